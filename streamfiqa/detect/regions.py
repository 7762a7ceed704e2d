"""Detection that follows the faces: full frames now and then, windows around known faces in between.

A face in video moves a few pixels a frame, so once a stream's faces are known the next frame only needs
looking at where they were. :class:`RegionDetector` runs the detector on each stream's full frame every
``full_every`` frames (new faces appear there) and, on the frames between, on one small window around each
face its last frames showed, all windows of all streams in one network run. On the 1080p crowd clip this
cuts RetinaFace's time per frame about 3× (``python -m bench --only detector``). Windows also scale each
face to the size the network finds best, so faces too small for the downscaled full frame are kept once
found. A face that newly enters is found at the next full frame: at most ``full_every - 1`` frames late.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Hashable

import cv2
import numpy as np

from streamfiqa.detect.base import Detector, nms
from streamfiqa.types import Faces

#: A face fills this share of its window's side (48 px of 128): RetinaFace's and SCRFD's small-face anchors
#: (16–64 px at stride 8–16) cover it, with a face-width of margin for motion on every side.
FACE_SHARE = 0.375
DUPLICATE_IOU = 0.4  # two windows that see the same face report it twice: keep the more confident


@dataclass
class _Stream:
    since_full: int
    recent: deque  # boxes (N, 4) of the stream's last ``memory`` frames, newest last


class RegionDetector:
    """Full-frame detection on one frame in ``full_every`` per stream; windows around known faces between.

    Args:
        detector: the detector both kinds of frame use (its ``min_face``, ``score_threshold``, ``max_faces``
            and ``max_side`` apply to both).
        full_every: full-frame detection on one frame in this many per stream (1 = every frame, no windows).
        window: side of each window at the network's scale, pixels.
        memory: how many of a stream's last frames seed its windows (2 bridges a face missed once).

    Raises:
        ValueError: ``full_every`` or ``memory`` below 1, or ``window`` below 32.
    """

    def __init__(self, detector: Detector, full_every: int = 5, window: int = 128, memory: int = 2) -> None:
        if full_every < 1 or memory < 1 or window < 32:
            raise ValueError(f"RegionDetector: expected full_every >= 1, memory >= 1 and window >= 32, found "
                             f"{full_every}, {memory} and {window}")
        self.detector, self.full_every, self.window, self.memory = detector, int(full_every), int(window), memory
        self._streams: dict[Hashable, _Stream] = {}
        #: Frames detected in full, frames detected through windows, and windows run.
        self.counts = {"full": 0, "windowed": 0, "windows": 0}
        #: The streams whose frame the last :meth:`detect_batch` detected in full.
        self.last_full: set = set()

    def forget(self, stream: Hashable) -> None:
        """Detect ``stream``'s next frame in full (after a shot cut, a reconnect or frames dropped)."""
        self._streams.pop(stream, None)

    def detect_batch(self, images: list[np.ndarray], streams: list[Hashable]) -> list[Faces]:
        """Faces of one frame from each of several streams, in frame coordinates.

        Args:
            images: BGR uint8 frames.
            streams: the stream each frame comes from (any hashable key), in the same order.
        """
        if len(images) != len(streams):
            raise ValueError(f"detect_batch: expected one stream key per image, found {len(streams)} keys for "
                             f"{len(images)} images")
        out: list[Faces | None] = [None] * len(images)
        full, windows, owners = [], [], []
        for k, (image, key) in enumerate(zip(images, streams)):
            if key not in self._streams:  # a new stream starts with a full frame
                self._streams[key] = _Stream(self.full_every, deque(maxlen=self.memory))
            st = self._streams[key]
            boxes = self._seeds(st)
            if st.since_full >= self.full_every or self._cheaper_in_full(image, len(boxes)):
                full.append(k)
                continue
            for box in boxes:
                windows.append(self._window(image, box))
                owners.append(k)
            if not len(boxes):  # nobody known: nothing to look at until the next full frame
                out[k] = Faces.empty()
        if full:
            for k, faces in zip(full, self.detector.detect_batch([images[k] for k in full])):
                out[k] = faces
        if windows:
            # the tracked faces are ~FACE_SHARE of a window; far smaller ones are the next full frame's job. The floor
            # is each frame's own (its windows' smallest scale): a frame's faces never depend on other streams'
            scale = {k: min(s for (_, (_, _, s)), o in zip(windows, owners) if o == k) for k in set(owners)}
            floors = [max(self.detector.min_face * scale[o], FACE_SHARE * self.window / 3) for o in owners]
            found = self.detector.detect_windows([w for w, _ in windows], floors)
            for k in sorted(set(owners)):
                mine = [(f, m) for f, (_, m), o in zip(found, windows, owners) if o == k]
                out[k] = self._merge(mine)
        for k, key in enumerate(streams):
            st = self._streams[key]
            st.since_full = 1 if k in full else st.since_full + 1
            st.recent.append(out[k].boxes)
        self.last_full = {streams[k] for k in full}
        self.counts["full"] += len(full)
        self.counts["windowed"] += len(images) - len(full)
        self.counts["windows"] += len(windows)
        return out  # type: ignore[return-value]

    def _seeds(self, st: _Stream) -> np.ndarray:
        """Boxes to look around: the stream's recent faces, newest first, one per place."""
        recent = [b for b in reversed(st.recent) if len(b)]
        if not recent:
            return np.zeros((0, 4), np.float32)
        boxes = np.concatenate(recent)
        age = np.arange(len(boxes), 0, -1, dtype=np.float32)  # newer boxes win the overlap
        return boxes[nms(boxes, age, 0.3)]

    def _cheaper_in_full(self, image: np.ndarray, n: int) -> bool:
        """So many windows that the full frame (at ``max_side``) has fewer pixels than they do; with a detector of
        fixed input (:attr:`Detector.fixed_input`) any window at all."""
        if self.detector.fixed_input:
            return n >= 1
        h, w = image.shape[:2]
        s = min(1.0, self.detector.max_side / max(h, w)) if self.detector.max_side else 1.0
        return n * self.window ** 2 >= h * w * s * s

    def _window(self, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
        """The square window around ``box`` at the network's scale, and ``(x0, y0, scale)`` that maps it
        back (frame = window / scale + origin). Parts beyond the frame are the detector's blank colour."""
        size = float(max(box[2] - box[0], box[3] - box[1], 1.0))
        side = max(int(round(size / FACE_SHARE)), 8)
        x0 = int(round((box[0] + box[2]) / 2 - side / 2))
        y0 = int(round((box[1] + box[3]) / 2 - side / 2))
        h, w = image.shape[:2]
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
        if cx1 <= cx0 or cy1 <= cy0:  # the face left the frame entirely
            crop = np.full((side, side, 3), self.detector.pad_bgr, np.uint8)
        else:
            crop = cv2.copyMakeBorder(image[cy0:cy1, cx0:cx1], cy0 - y0, y0 + side - cy1, cx0 - x0,
                                      x0 + side - cx1, cv2.BORDER_CONSTANT, value=self.detector.pad_bgr)
        # shrinking averages (as the full-frame downscale does); enlarging interpolates
        interp = cv2.INTER_AREA if side > 2 * self.window else cv2.INTER_LINEAR
        scale = self.window / side
        return cv2.resize(crop, (self.window, self.window), interpolation=interp), (x0, y0, scale)

    def _merge(self, found: list[tuple[Faces, tuple[float, float, float]]]) -> Faces:
        """One frame's window detections in frame coordinates, duplicates removed, the detector's floors
        applied."""
        parts = [(f.scaled(1.0 / s), x0, y0) for f, (x0, y0, s) in found if len(f)]
        if not parts:
            return Faces.empty()
        boxes = np.concatenate([f.boxes + np.float32([x0, y0, x0, y0]) for f, x0, y0 in parts])
        points = np.concatenate([f.landmarks + np.float32([x0, y0]) for f, x0, y0 in parts])
        scores = np.concatenate([f.scores for f, _, _ in parts])
        keep = nms(boxes, scores, DUPLICATE_IOU)
        return self.detector.finish(Faces(boxes[keep], scores[keep], points[keep]))
