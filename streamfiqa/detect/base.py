"""The detector interface: ``detect(image) -> Faces`` with shared pre/post-processing."""
from __future__ import annotations

import abc
from dataclasses import dataclass

import cv2
import numpy as np

from streamfiqa.backends.onnxruntime_backend import session_options
from streamfiqa.registry import Registry
from streamfiqa.types import Faces

DETECTORS: Registry["Detector"] = Registry("detector")


@dataclass(frozen=True)
class ScoreScale:
    """What a detector's confidences mean, as thresholds on its own scale: the lowest score reported (``floor``), and
    the tracker's bands: ``low`` (extends a track), ``high`` (matched first) and ``new`` (starts a track).

    Detectors do not share a scale (on faces that three of the four embedded or shared detectors agreed on, in the
    development clips and the crowd clip, RetinaFace's median was 0.999, SCRFD-2.5G's 0.77, YuNet's 0.94, MTCNN's
    1.000). RetinaFace's thresholds were fit with it; each other detector's are the same quantiles of its own scores
    on those faces, so that every detector starts tracks on the same share of real faces.
    """

    floor: float = 0.7
    low: float = 0.7
    high: float = 0.9
    new: float = 0.95


class Detector(abc.ABC):
    """Base class: downscales large frames, filters by size/score and keeps the largest faces.

    Args:
        min_face: smallest face (shorter box side, full-frame pixels) to report.
        score_threshold: lowest detector confidence to report (None: the detector's own floor, :attr:`score_scale`).
        max_faces: keep at most this many faces (highest score × size first); 0 = all.
        max_side: frames whose longer side exceeds this are detected on a downscaled copy.
    """

    #: This detector's score scale (:class:`ScoreScale`).
    score_scale: ScoreScale = ScoreScale()

    def __init__(self, min_face: int = 20, score_threshold: float | None = None,
                 max_faces: int = 0, max_side: int = 1280) -> None:
        self.min_face = int(min_face)
        self.score_threshold = float(self.score_scale.floor if score_threshold is None else score_threshold)
        self.max_faces = int(max_faces)
        self.max_side = int(max_side)
        #: Faces found but not reported, by the rule that dropped them.
        self.dropped = {"score": 0, "min_face": 0, "max_faces": 0}

    def detect(self, image: np.ndarray) -> Faces:
        """Find faces in a BGR uint8 image; coordinates refer to ``image``."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"detect: expected an (H, W, 3) uint8 BGR image, found "
                             f"{image.shape} {image.dtype}")
        scale = 1.0
        longest = max(image.shape[:2])
        if self.max_side and longest > self.max_side:
            scale = self.max_side / longest
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        faces = self._detect(image, max(self.min_face * scale, 1.0))
        return self.finish(faces.scaled(1.0 / scale) if scale != 1.0 else faces)

    def detect_batch(self, images: list[np.ndarray]) -> list[Faces]:
        """Faces of several frames; detectors that batch their network override this."""
        return [self.detect(image) for image in images]

    def detect_windows(self, windows: list[np.ndarray], min_face: float | list[float]) -> list[Faces]:
        """Faces of at least ``min_face`` pixels (one floor, or one per window) in image windows already at the
        network's scale (no downscaling and no score floor: the caller maps them back to its frame and applies
        :meth:`finish` there). Detectors that batch their network override this;
        :class:`~streamfiqa.detect.regions.RegionDetector` calls it."""
        return [self._detect(w, m) for w, m in zip(windows, size_floors(min_face, len(windows)))]

    #: BGR colour of the border around a window that reaches past its frame (the network's "nothing").
    pad_bgr: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: Side of a network input every image is scaled to (a fixed-shape model), else ``None``. Then a window costs
    #: what a whole frame costs, and region detection detects in full instead.
    fixed_input: int | None = None

    def finish(self, faces: Faces) -> Faces:
        """Drop faces below the score or size floor and keep the ``max_faces`` best."""
        low, small = faces.scores < self.score_threshold, faces.sizes < self.min_face
        self.dropped["score"] += int(low.sum())
        self.dropped["min_face"] += int((small & ~low).sum())
        faces = faces[~(low | small)]
        if self.max_faces and len(faces) > self.max_faces:
            self.dropped["max_faces"] += len(faces) - self.max_faces
            order = np.argsort(-(faces.scores * faces.sizes))[: self.max_faces]
            faces = faces[np.sort(order)]
        return faces

    @abc.abstractmethod
    def _detect(self, image: np.ndarray, min_face: float) -> Faces:
        """Detect on an image already scaled; ``min_face`` is in its pixels."""


def size_floors(min_face: float | list[float], n: int) -> list[float]:
    """``min_face`` as one size floor per image of ``n`` (one for all, or already one each)."""
    return list(min_face) if isinstance(min_face, (list, tuple)) else [min_face] * n


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression.

    Args:
        boxes: ``(N, 4)`` xyxy boxes.
        scores: ``(N,)`` scores.
        iou: overlap above which the lower-scored box is suppressed.
        mode: ``"union"`` (IoU) or ``"min"`` (intersection over the smaller box).

    Returns:
        Indices of the kept boxes, best first.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= iou]
    return np.asarray(keep, dtype=np.int64)


def onnx_session(path: str, providers: list[str] | None = None, threads: int = 0):
    """Open an ONNX Runtime session, CPU unless other providers are given and present."""
    import onnxruntime as ort

    opts = session_options(threads)
    available = ort.get_available_providers()
    wanted = [p for p in (providers or ["CPUExecutionProvider"]) if p in available]
    return ort.InferenceSession(str(path), sess_options=opts,
                                providers=wanted or ["CPUExecutionProvider"])
