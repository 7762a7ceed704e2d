"""Value types passed between stages: frames and detected faces."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Faces:
    """Faces found in one image, validated on construction.

    Attributes:
        boxes: ``(N, 4)`` float32 boxes ``x1, y1, x2, y2`` in pixels.
        scores: ``(N,)`` float32 detector confidences in ``[0, 1]``.
        landmarks: ``(N, 5, 2)`` float32 points: left eye, right eye, nose,
            left mouth corner, right mouth corner (image left/right).
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        landmarks = np.asarray(self.landmarks, dtype=np.float32)
        n = len(boxes)
        if scores.shape != (n,):
            raise ValueError(f"Faces.scores: expected shape ({n},), found {scores.shape}")
        if landmarks.size == 0 and n == 0:
            landmarks = landmarks.reshape(0, 5, 2)
        if landmarks.shape != (n, 5, 2):
            raise ValueError(f"Faces.landmarks: expected shape ({n}, 5, 2), found {landmarks.shape}")
        if n and np.any(boxes[:, 2:] < boxes[:, :2]):
            raise ValueError("Faces.boxes: expected x2 >= x1 and y2 >= y1 in every row")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "landmarks", landmarks)

    @classmethod
    def empty(cls) -> "Faces":
        """Return a value holding no faces."""
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index) -> "Faces":
        """Select faces by integer array, slice or boolean mask."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        return Faces(self.boxes[index], self.scores[index], self.landmarks[index])

    def scaled(self, factor: float) -> "Faces":
        """Return the faces with every coordinate multiplied by ``factor``."""
        return Faces(self.boxes * factor, self.scores, self.landmarks * factor)

    @property
    def sizes(self) -> np.ndarray:
        """Shorter side of each box in pixels."""
        wh = self.boxes[:, 2:] - self.boxes[:, :2]
        return wh.min(axis=1) if len(self) else np.zeros(0, np.float32)


@dataclass
class Frame:
    """One decoded picture of a source.

    Attributes:
        source_id: id of the source it came from.
        index: decode order index within the source (counts every decoded frame).
        pts: presentation time in seconds, from the stream's own timestamps.
        image: ``(H, W, 3)`` uint8 BGR picture.
        wallclock: ``time.time()`` when it was decoded.
        cut: True when this frame surely starts a new shot (its colours changed; :mod:`streamfiqa.io.shots`).
        change: its structural change from the previous frame relative to the clip's own (a cut candidate past
            ``sources.cut_change``; 0 when cuts are not detected).
        step: its change is a one-frame step (a cut candidate whatever ``change`` is; :mod:`streamfiqa.io.shots`).
        capture: estimated wall time the frame was captured (live sources: anchored on the earliest
            arrival); 0 for a recording read at the pipeline's pace (files, HLS VOD, a file over HTTP).
        name: the image's file name when the frame is a photo of an image folder; empty for video frames.
        thumbs: ``(2, h, 64)`` the previous frame's and its own standardised 64-px grey thumbnails (how much each
            face changed: :func:`streamfiqa.io.shots.region_change`); None when cuts are not detected.
        damaged: decoded from a damaged stretch of the stream (bytes lost or broken since the last whole keyframe):
            parts of the picture may be the decoder's guesses. Its faces are tracked but fail the ``damaged`` gate.
    """

    source_id: str
    index: int
    pts: float
    image: np.ndarray
    wallclock: float = 0.0
    cut: bool = False
    change: float = 0.0
    step: bool = False
    capture: float = 0.0
    name: str = ""
    thumbs: np.ndarray | None = None
    damaged: bool = False

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(
                f"Frame.image: expected (H, W, 3) uint8, found {self.image.shape} {self.image.dtype}")


#: The face region of a 112×112 aligned crop (rows 24–104, columns 16–96): where image statistics are measured and
#: whether a face lies in the frame is judged.
FACE_REGION = (slice(24, 104), slice(16, 96))


@dataclass
class Crops:
    """Aligned and display crops of the faces of one frame.

    Attributes:
        aligned: ``(N, 112, 112, 3)`` uint8 BGR crops on the ArcFace template.
        display: list of N uint8 BGR display crops (square, with margin).
        valid: ``(N, 112, 112)`` bool, the pixels of each aligned crop taken from inside the frame (the rest is black
            padding where the frame ended: a face cut by its edge); None: all of them.
    """

    aligned: np.ndarray
    display: list = field(default_factory=list)
    valid: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.aligned.ndim != 4 or self.aligned.shape[1:] != (112, 112, 3):
            raise ValueError(f"Crops.aligned: expected (N, 112, 112, 3), found {self.aligned.shape}")
        if len(self.display) != len(self.aligned):
            raise ValueError(
                f"Crops.display: expected {len(self.aligned)} crops, found {len(self.display)}")
        if self.valid is not None and (self.valid.shape != self.aligned.shape[:3] or self.valid.dtype != bool):
            raise ValueError(f"Crops.valid: expected bool {self.aligned.shape[:3]}, found {self.valid.dtype} "
                             f"{self.valid.shape}")
