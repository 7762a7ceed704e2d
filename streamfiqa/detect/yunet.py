"""YuNet through OpenCV's ``cv2.FaceDetectorYN`` from a model path."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streamfiqa.detect.base import DETECTORS, Detector, ScoreScale
from streamfiqa.types import Faces


@DETECTORS.register("yunet")
class YuNetDetector(Detector):
    """YuNet (OpenCV Zoo ``face_detection_yunet_*.onnx``).

    Args:
        model_path: path of the YuNet ``.onnx`` file (required).
        nms_threshold: OpenCV's NMS IoU.
        **kwargs: see :class:`Detector`.
    """

    score_scale = ScoreScale(0.72, 0.72, 0.81, 0.84)  # fit on the development clips (ScoreScale)

    def __init__(self, model_path: str | None = None, nms_threshold: float = 0.3, **kwargs) -> None:
        super().__init__(**kwargs)
        if not model_path or not Path(model_path).is_file():
            raise FileNotFoundError(
                f"yunet: expected detector.model_path to name a YuNet .onnx file, found {model_path!r}")
        try:
            self.model = cv2.FaceDetectorYN.create(str(model_path), "", (320, 320),
                                                   self.score_threshold, nms_threshold, 5000)
        except cv2.error as exc:
            raise ValueError(f"yunet: expected detector.model_path {model_path} to be a YuNet .onnx OpenCV can load, "
                             f"found one it cannot ({str(exc).strip().splitlines()[-1][:160]})") from None

    def _detect(self, image: np.ndarray, min_face: float) -> Faces:
        h, w = image.shape[:2]
        self.model.setInputSize((w, h))
        _, rows = self.model.detect(image)
        if rows is None or len(rows) == 0:
            return Faces.empty()
        boxes = np.concatenate([rows[:, 0:2], rows[:, 0:2] + rows[:, 2:4]], axis=1)
        # YuNet orders landmarks: right eye, left eye (subject's), nose, right/left mouth.
        return Faces(boxes, rows[:, 14], rows[:, 4:14].reshape(-1, 5, 2))
