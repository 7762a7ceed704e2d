"""Is it a face at all? A second detector's opinion on crops the fast score finds unrecognisable.

The fast score cannot tell a hand or a pattern (0.05–0.16 on the development clips) from a real face that is turned
away, occluded or blurred (−0.05–0.21). A second detector of another family can: MTCNN, run on the display crops of
such detections, found a face in none of 15 non-faces and in 6 of 14 hard real faces (development clips and the
crowd clip, labelled by looking). So a low fast score alone does not reject a track; a low fast score that a second
detector also fails to see as a face does.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np

log = logging.getLogger(__name__)


class FaceCheck:
    """Asks a second detector whether any of a few crops shows a face near its centre.

    Args:
        detector: a registered detector name (its own score floor decides; ``mtcnn`` by default: another family than
            the pipeline's RetinaFace, and shipped with the package).
        size: crops are resized to this side before detection.
        looks: at most this many crops are checked per call (the caller gives its best first).
    """

    def __init__(self, detector: str = "mtcnn", size: int = 160, looks: int = 3) -> None:
        if size < 48 or looks < 1:
            raise ValueError(f"face check: expected size >= 48 and looks >= 1, found size {size}, looks {looks}")
        from streamfiqa.detect import detector_names

        if detector not in detector_names():  # fails here, listing the valid ones, not at the first track's end
            raise ValueError(f"quality.face_check: expected a detector name ({', '.join(detector_names())}) or "
                             f"null, found {detector!r}")
        self.name, self.size, self.looks = detector, int(size), int(looks)
        self._detector = None
        #: Calls answered, by answer.
        self.counts = {"face": 0, "no_face": 0}

    def _load(self):
        if self._detector is None:
            from streamfiqa.detect import create_detector

            self._detector = create_detector(self.name, min_face=max(12, self.size // 8))
        return self._detector

    def __call__(self, crops: Sequence[np.ndarray]) -> bool:
        """True when the detector finds a face whose centre lies in the middle half of one of ``crops`` (BGR)."""
        det = self._load()
        for crop in list(crops)[: self.looks]:
            if crop is None or crop.size == 0:
                continue
            img = cv2.resize(np.ascontiguousarray(crop), (self.size, self.size), interpolation=cv2.INTER_AREA)
            faces = det.detect(img)
            if len(faces):
                centre = (faces.boxes[:, :2] + faces.boxes[:, 2:4]) / 2 / self.size
                if np.any(np.all(np.abs(centre - 0.5) <= 0.25, axis=1)):
                    self.counts["face"] += 1
                    return True
        self.counts["no_face"] += 1
        return False
