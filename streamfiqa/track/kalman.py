"""Constant-velocity Kalman filter on a face box, as in SORT and ByteTrack."""
from __future__ import annotations

import numpy as np


class KalmanBox:
    """Constant-velocity Kalman filter on (cx, cy, aspect, height), as in SORT/ByteTrack."""

    _F = np.eye(8)
    _F[:4, 4:] = np.eye(4)
    _H = np.eye(4, 8)

    def __init__(self, box: np.ndarray) -> None:
        z = self._measure(box)
        self.x = np.r_[z, np.zeros(4)]
        h = z[3]
        std = np.array([2 * h / 20, 2 * h / 20, 1e-2, 2 * h / 20, 10 * h / 160, 10 * h / 160, 1e-5, 10 * h / 160])
        self.P = np.diag(std ** 2)

    @staticmethod
    def _measure(box: np.ndarray) -> np.ndarray:
        w, h = box[2] - box[0], max(box[3] - box[1], 1e-3)
        return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, w / h, h], np.float64)

    def predict(self) -> None:
        h = self.x[3]
        q = np.array([h / 20, h / 20, 1e-2, h / 20, h / 160, h / 160, 1e-5, h / 160]) ** 2
        self.x = self._F @ self.x
        self.P = self._F @ self.P @ self._F.T + np.diag(q)

    def update(self, box: np.ndarray) -> None:
        h = self.x[3]
        r = np.diag(np.array([h / 20, h / 20, 1e-1, h / 20]) ** 2)
        s = self._H @ self.P @ self._H.T + r
        k = self.P @ self._H.T @ np.linalg.inv(s)
        self.x = self.x + k @ (self._measure(box) - self._H @ self.x)
        self.P = (np.eye(8) - k @ self._H) @ self.P

    @property
    def box(self) -> np.ndarray:
        cx, cy, a, h = self.x[:4]
        w = a * h
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)
