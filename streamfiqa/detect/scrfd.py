"""SCRFD (insightface) from a model path, through ``insightface.model_zoo``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from streamfiqa.detect.base import DETECTORS, Detector
from streamfiqa.types import Faces


@DETECTORS.register("scrfd")
class SCRFDDetector(Detector):
    """SCRFD with keypoints (e.g. ``scrfd_500m_kps.onnx``) loaded by insightface.

    Args:
        model_path: path of the SCRFD ``.onnx`` file (required; no download happens).
        input_size: network input side; fixed-shape models need their own (usually 640).
        nms_threshold: insightface's NMS IoU.
        providers: ONNX Runtime execution providers to prefer.
        **kwargs: see :class:`Detector`.
    """

    def __init__(self, model_path: str | None = None, input_size: int = 640,
                 nms_threshold: float = 0.4, providers: list[str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not model_path or not Path(model_path).is_file():
            raise FileNotFoundError(
                f"scrfd: expected detector.model_path to name an SCRFD .onnx file, found {model_path!r}")
        from insightface.model_zoo import get_model

        self.model = get_model(str(model_path), providers=providers or ["CPUExecutionProvider"])
        if self.model is None or not hasattr(self.model, "detect"):
            raise ValueError(f"scrfd: {model_path} is not an SCRFD detector model")
        self.model.prepare(ctx_id=-1, input_size=(input_size, input_size),
                           det_thresh=min(self.score_threshold, 0.5), nms_thresh=nms_threshold)
        self.input_size = (input_size, input_size)

    def _detect(self, image: np.ndarray, min_face: float) -> Faces:
        dets, kps = self.model.detect(image, input_size=self.input_size)
        if dets is None or len(dets) == 0:
            return Faces.empty()
        if kps is None:
            raise ValueError("scrfd: the model gives no keypoints; expected a *_kps model")
        return Faces(dets[:, :4], dets[:, 4], kps)
