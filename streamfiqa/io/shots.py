"""Hard shot-cut detection on decoded frames (runs in the decode thread, ≈ 1 ms a 1080p frame).

A colour histogram (hue × saturation, 16 × 8 bins, plus 16 value bins) of a 160-px-wide thumbnail is
compared with the previous frame's by the Bhattacharyya distance (0 = same, 1 = disjoint). A cut is a
distance above ``threshold`` that is also ``ratio`` times the running median of recent distances, so a
fast pan or a flash in a busy scene is not taken for a cut while a change of scene is.
"""
from __future__ import annotations

import collections

import cv2
import numpy as np


class ShotCutDetector:
    """Flags the first frame of each new shot.

    Args:
        threshold: lowest Bhattacharyya distance of a cut.
        ratio: a cut's distance must also exceed this multiple of the recent median distance.
        history: frames in the running median.
    """

    def __init__(self, threshold: float = 0.45, ratio: float = 3.0, history: int = 25) -> None:
        if not 0 < threshold < 1:
            raise ValueError(f"shot cuts: expected 0 < threshold < 1, found {threshold}")
        self.threshold, self.ratio = float(threshold), float(ratio)
        self._prev: np.ndarray | None = None
        self._recent: collections.deque = collections.deque(maxlen=history)
        self.cuts = 0

    @staticmethod
    def signature(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        small = cv2.resize(image, (160, max(int(160 * h / w), 1)), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        hs = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256]).ravel()
        v = cv2.calcHist([hsv], [2], None, [16], [0, 256]).ravel()
        sig = np.concatenate([hs / max(hs.sum(), 1), v / max(v.sum(), 1)]).astype(np.float32)
        return sig

    def is_cut(self, image: np.ndarray) -> bool:
        """Whether ``image`` starts a new shot (the first frame never does)."""
        sig = self.signature(image)
        prev, self._prev = self._prev, sig
        if prev is None:
            return False
        n = len(sig) - 16
        d = 0.5 * (cv2.compareHist(prev[:n], sig[:n], cv2.HISTCMP_BHATTACHARYYA)
                   + cv2.compareHist(prev[n:], sig[n:], cv2.HISTCMP_BHATTACHARYYA))
        median = float(np.median(self._recent)) if self._recent else 0.0
        self._recent.append(d)
        cut = d > self.threshold and d > self.ratio * median
        self.cuts += int(cut)
        return bool(cut)
