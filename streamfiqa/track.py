"""Kalman + IoU multi-object tracker with ByteTrack's two-stage association."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from streamfiqa.types import Faces


class TrackState(enum.Enum):
    """Life cycle: TENTATIVE → CONFIRMED ⇄ LOST → ENDED."""

    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"
    ENDED = "ended"


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


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


@dataclass
class Track:
    """One tracked face."""

    track_id: int
    kalman: KalmanBox
    state: TrackState = TrackState.TENTATIVE
    streak: int = 1
    end_reason: str | None = None
    _misses: int = field(default=0, repr=False)

    @property
    def box(self) -> np.ndarray:
        return self.kalman.box


@dataclass
class TrackUpdate:
    """Result of one tracker step.

    Attributes:
        assignments: ``(track_id, detection_index)`` for every detection that belongs to a
            track this frame, tentative ones included.
        ended: tracks that had been confirmed and ended at this step (``end_reason`` set).
        dropped: ids of tentative tracks that ended without ever being confirmed.
    """

    assignments: list[tuple[int, int]]
    ended: list[Track]
    dropped: list[int] = field(default_factory=list)


def _match(cost: np.ndarray, max_cost: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    if cost.size == 0:
        return [], list(range(cost.shape[0])), list(range(cost.shape[1]))
    rows, cols = linear_sum_assignment(cost)
    pairs = [(r, c) for r, c in zip(rows, cols) if cost[r, c] <= max_cost]
    mr = {r for r, _ in pairs}
    mc = {c for _, c in pairs}
    return pairs, [r for r in range(cost.shape[0]) if r not in mr], [c for c in range(cost.shape[1]) if c not in mc]


class Tracker:
    """ByteTrack-style tracker for one source.

    Args:
        high_thresh: detections at or above this score are matched first.
        low_thresh: detections between this and ``high_thresh`` only extend existing tracks.
        new_track_thresh: lowest score that starts a new track.
        match_iou: lowest IoU for a first-stage match (second stage uses 0.5 × 1.0 cost, i.e. IoU ≥ 0.5).
        max_age: frames a confirmed track may go unmatched before it ends as ``lost``.
        min_hits: consecutive matches a tentative track needs to be confirmed.
    """

    def __init__(self, high_thresh: float = 0.8, low_thresh: float = 0.5, new_track_thresh: float = 0.85,
                 match_iou: float = 0.2, max_age: int = 30, min_hits: int = 3) -> None:
        if not 0 <= low_thresh <= high_thresh <= 1:
            raise ValueError(f"tracker: expected 0 <= low_thresh <= high_thresh <= 1, "
                             f"found {low_thresh}, {high_thresh}")
        self.high_thresh, self.low_thresh = high_thresh, low_thresh
        self.new_track_thresh, self.match_iou = new_track_thresh, match_iou
        self.max_age, self.min_hits = int(max_age), int(min_hits)
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, faces: Faces) -> TrackUpdate:
        """Advance one frame with its detections."""
        for t in self.tracks:
            t.kalman.predict()
        high = np.nonzero(faces.scores >= self.high_thresh)[0]
        low = np.nonzero((faces.scores >= self.low_thresh) & (faces.scores < self.high_thresh))[0]
        active = [t for t in self.tracks if t.state in (TrackState.CONFIRMED, TrackState.LOST)]
        tentative = [t for t in self.tracks if t.state is TrackState.TENTATIVE]
        matched: list[tuple[Track, int]] = []

        def boxes(ts):
            return np.array([t.box for t in ts], np.float32).reshape(-1, 4)

        # Stage 1: confident detections against confirmed and lost tracks.
        pairs, left_t, left_d = _match(1 - iou_matrix(boxes(active), faces.boxes[high]), 1 - self.match_iou)
        matched += [(active[r], high[c]) for r, c in pairs]
        rest_high = high[left_d]
        # Stage 2: low-score detections only extend tracks that are still visible.
        remaining = [active[r] for r in left_t if active[r].state is TrackState.CONFIRMED]
        pairs, _, _ = _match(1 - iou_matrix(boxes(remaining), faces.boxes[low]), 0.5)
        matched += [(remaining[r], low[c]) for r, c in pairs]
        # Stage 3: tentative tracks against leftover confident detections.
        pairs, _, left_d = _match(1 - iou_matrix(boxes(tentative), faces.boxes[rest_high]), 1 - self.match_iou)
        matched += [(tentative[r], rest_high[c]) for r, c in pairs]
        unmatched_high = rest_high[left_d]

        hit_ids = set()
        for t, d in matched:
            t.kalman.update(faces.boxes[d])
            t.streak += 1
            t._misses = 0
            if t.state is TrackState.LOST or (t.state is TrackState.TENTATIVE and t.streak >= self.min_hits):
                t.state = TrackState.CONFIRMED
            hit_ids.add(t.track_id)
        ended, dropped = [], []
        for t in self.tracks:
            if t.track_id in hit_ids:
                continue
            t.streak = 0
            t._misses += 1
            if t.state is TrackState.TENTATIVE:
                t.state = TrackState.ENDED
                dropped.append(t.track_id)
            elif t._misses > self.max_age:
                t.state, t.end_reason = TrackState.ENDED, "lost"
                ended.append(t)
            else:
                t.state = TrackState.LOST
        for d in unmatched_high:
            if faces.scores[d] >= self.new_track_thresh:
                self._start(faces.boxes[d])
                if self.min_hits <= 1:
                    self.tracks[-1].state = TrackState.CONFIRMED
                matched.append((self.tracks[-1], d))
        self.tracks = [t for t in self.tracks if t.state is not TrackState.ENDED]
        assignments = sorted((t.track_id, int(d)) for t, d in matched)
        return TrackUpdate(assignments, ended, dropped)

    def get(self, track_id: int) -> Track | None:
        """The live track with ``track_id``, if any."""
        return next((t for t in self.tracks if t.track_id == track_id), None)

    def flush(self, reason: str) -> list[Track]:
        """End every confirmed or lost track now (EOF, shutdown), returning them."""
        ended = []
        for t in self.tracks:
            if t.state in (TrackState.CONFIRMED, TrackState.LOST):
                t.state, t.end_reason = TrackState.ENDED, reason
                ended.append(t)
        self.tracks = []
        return ended

    def _start(self, box: np.ndarray) -> None:
        self.tracks.append(Track(self._next_id, KalmanBox(box)))
        self._next_id += 1
