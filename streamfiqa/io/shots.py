"""Shot cuts on decoded frames (in the decode thread, ≈ 1 ms a 1080p frame), judged against the clip's own motion.

Two measures of the change from the previous frame, on a 160-px (colour) and a 64-px (grey) thumbnail:

* ``distance``: the Bhattacharyya distance of colour histograms (hue × saturation, 16 × 8 bins, plus 16 value bins):
  0 = the same colours, 1 = disjoint. At or above ``threshold`` the frame starts a new shot whatever else happens
  (real hard cuts between different sets: 0.52–0.65).
* ``change``: the mean absolute difference of the two grey thumbnails, each standardised to zero mean and unit
  variance (so an exposure or white-balance jump of a webcam, or a graded flash, changes nothing), divided by the 90th
  percentile of the same difference over the last ``history`` frames (the clip's own motion: a talking head moves
  little, a dance a lot; frames duplicated by a frame-rate conversion do not inflate it the way a median would).

A frame whose ``change`` reaches the runner's ``cut_change`` is a **candidate**: it starts a new shot unless one of the
faces tracked on the previous frame continues on it unchanged (:meth:`streamfiqa.track.tracker.Tracker.continues`):
a picture-in-picture insert that changes beside a presenter, or a graphic, is no cut for the faces. Unchanged is
said by the face's embedding or by its own pixels: :attr:`ShotCutDetector.thumbs` keeps the last two thumbnails,
and :func:`region_change` reads how much each face's box changed between them. Same-set cuts to
another person (colour distance 0.2–0.3) are found this way; jump cuts within one scene are found when their jump
stands out of the clip's motion (README, "The best crop on real video").

A frame is also a candidate when it is a **step**: its ``change`` reaches ``step`` while the three frames before it
and the one after it changed by at most ``step_ratio`` of that. A cut changes the picture once and then the new shot
runs on; motion, a camera move or a flash changes it over several frames or changes it back. Knowing a step takes
the next frame, so a source that detects cuts hands on each frame one frame late (:meth:`ShotCutDetector.was_step`).
"""
from __future__ import annotations

import collections

import cv2
import numpy as np


class ShotCutDetector:
    """Measures each frame's change from the previous one and flags certain cuts.

    Args:
        threshold: colour-histogram distance at or above which a frame surely starts a new shot.
        history: frames whose structural changes make the clip's own reference.
        floor: the smallest reference (a still clip's tiny changes must not make every small motion a candidate).
        min_history: changes known before a frame can be a candidate (before, its change reads 0: with no reference
            of the clip's own motion, the first frames of 3 development clips, an encoder's settling, read 5.5–16.5);
            the colour rule holds from the second frame on.
        step: the smallest ``change`` of a step (0: steps are not looked for).
        step_ratio: how much, at most, of a step's change the frames around it may change.
    """

    def __init__(self, threshold: float = 0.45, history: int = 25, floor: float = 0.02, min_history: int = 5,
                 step: float = 3.5, step_ratio: float = 0.35) -> None:
        if not 0 < threshold < 1:
            raise ValueError(f"shot cuts: expected 0 < threshold < 1, found {threshold}")
        if step < 0 or not 0 < step_ratio <= 1:
            raise ValueError(f"shot cuts: expected step >= 0 and 0 < step_ratio <= 1, found {step} and {step_ratio}")
        self.threshold, self.floor, self.min_history = float(threshold), float(floor), int(min_history)
        self.step, self.step_ratio = float(step), float(step_ratio)
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self._recent: collections.deque = collections.deque(maxlen=history)
        self._changes: collections.deque = collections.deque(maxlen=5)  # three before, the frame, the one after
        self.cuts = 0
        self.thumbs: np.ndarray | None = None  # the last two frames' thumbnails (:func:`region_change`)

    @staticmethod
    def signature(image: np.ndarray) -> np.ndarray:
        """Normalised colour histograms of a 160-px thumbnail (hue × saturation, then value)."""
        h, w = image.shape[:2]
        small = cv2.resize(image, (160, max(int(160 * h / w), 1)), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        hs = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256]).ravel()
        v = cv2.calcHist([hsv], [2], None, [16], [0, 256]).ravel()
        return np.concatenate([hs / max(hs.sum(), 1), v / max(v.sum(), 1)]).astype(np.float32)

    @staticmethod
    def structure(image: np.ndarray) -> np.ndarray:
        """A 64-px grey thumbnail standardised to zero mean and unit variance."""
        h, w = image.shape[:2]
        grey = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (64, max(int(64 * h / w), 8)),
                          interpolation=cv2.INTER_AREA).astype(np.float32)
        return (grey - grey.mean()) / (grey.std() + 1e-3)

    def observe(self, image: np.ndarray) -> tuple[bool, float]:
        """``(certain cut, change)`` of ``image`` against the previous frame (the first frame: ``(False, 0.0)``)."""
        sig, st = self.signature(image), self.structure(image)
        prev, self._prev = self._prev, (sig, st)
        if prev is None:
            self._changes.append(0.0)
            self.thumbs = None
            return False, 0.0
        n = len(sig) - 16
        distance = 0.5 * (cv2.compareHist(prev[0][:n], sig[:n], cv2.HISTCMP_BHATTACHARYYA)
                          + cv2.compareHist(prev[0][n:], sig[n:], cv2.HISTCMP_BHATTACHARYYA))
        self.thumbs = np.stack([prev[1], st]) if st.shape == prev[1].shape else None
        diff = float(np.abs(st - prev[1]).mean()) if self.thumbs is not None else 10.0
        known = len(self._recent) >= self.min_history
        ref = max(float(np.quantile(self._recent, 0.9)) if self._recent else self.floor, self.floor)
        self._recent.append(diff)
        certain = distance >= self.threshold
        self.cuts += int(certain)
        change = diff / ref if known else 0.0
        self._changes.append(change)
        return bool(certain), change

    def was_step(self) -> bool:
        """Whether the frame before the one last observed is a step (a cut candidate; see the module's notes)."""
        if self.step <= 0 or len(self._changes) < 2:
            return False
        *before, change, after = self._changes
        return change >= self.step and max(after, *before) <= self.step_ratio * change

    def is_cut(self, image: np.ndarray) -> bool:
        """Whether ``image`` surely starts a new shot (the colour rule alone; candidates need the faces)."""
        return self.observe(image)[0]


def region_change(thumbs: np.ndarray | None, boxes: np.ndarray, shape: tuple, min_cells: int = 3) -> np.ndarray:
    """How much each box's own pixels changed from the previous frame to this one.

    ``thumbs`` holds both frames' standardised 64-px grey thumbnails (:attr:`ShotCutDetector.thumbs`), ``boxes`` is
    ``(N, 4)`` in the frame's pixels and ``shape`` the frame's ``(H, W)``. Per box, the median absolute difference
    inside it, read two ways and the smaller one kept: on the thumbnails as the frame standardised them, and on the
    box's pixels standardised by their own mean and spread. Each way has its leak: an inset whose content changes
    elsewhere in the picture moves the frame's mean and spread (every pixel of a still face then reads as changed),
    and an inset over part of the box moves the box's own. A median, so that an inset covering less than half of the
    box leaves it alone. NaN for a box narrower than ``min_cells`` thumbnail pixels (too few to say) and for every box
    when ``thumbs`` is None (no previous frame of the same size)."""
    out = np.full(len(boxes), np.nan, np.float32)
    if thumbs is None:
        return out
    h, w = thumbs.shape[1:]
    sy, sx = h / float(shape[0]), w / float(shape[1])
    for k, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, np.float64).reshape(-1, 4)):
        c0, c1 = int(np.clip(np.floor(x0 * sx), 0, w - 1)), int(np.clip(np.ceil(x1 * sx), 1, w))
        r0, r1 = int(np.clip(np.floor(y0 * sy), 0, h - 1)), int(np.clip(np.ceil(y1 * sy), 1, h))
        if c1 - c0 >= min_cells and r1 > r0:
            a, b = thumbs[:, r0:r1, c0:c1]
            own = [(x - x.mean()) / (x.std() + 1e-3) for x in (a, b)]
            out[k] = min(float(np.median(np.abs(b - a))), float(np.median(np.abs(own[1] - own[0]))))
    return out
