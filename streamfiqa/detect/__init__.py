"""Face detectors behind one interface; ``create_detector(name, **kwargs)`` builds one."""
from __future__ import annotations

import inspect

from streamfiqa.detect.base import DETECTORS, Detector, nms
from streamfiqa.detect import mtcnn  # noqa: F401  (registers "mtcnn")

#: :class:`~streamfiqa.config.DetectorConfig` fields that only some detectors take (the others ignore them).
OPTIONAL = ("threads", "providers", "backend", "precision")


def _register_all() -> None:
    from streamfiqa.detect import retinaface, scrfd, yunet  # noqa: F401  (register lazily: heavy deps)


def create_detector(name: str, **kwargs) -> Detector:
    """Build the detector registered as ``name`` (valid: ``DETECTORS.names()``; an unknown name lists them)."""
    _register_all()
    return DETECTORS.create(name, **kwargs)


def detector_names() -> list[str]:
    """Every registered detector's name."""
    _register_all()
    return DETECTORS.names()


def detector_from_config(d) -> Detector:
    """Build the detector a :class:`~streamfiqa.config.DetectorConfig` describes.

    Each detector gets the :data:`OPTIONAL` fields its constructor names (``threads`` and ``providers`` go to the
    ONNX Runtime detectors, ``backend`` and ``precision`` to those on the backend interface; YuNet runs in OpenCV
    and takes none of them).
    """
    _register_all()
    params = inspect.signature(DETECTORS.get(d.name)).parameters
    extra = {k: getattr(d, k) for k in OPTIONAL if k in params}
    return create_detector(d.name, model_path=d.model_path, min_face=d.min_face, score_threshold=d.score_threshold,
                           max_faces=d.max_faces, max_side=d.max_side, **extra)


__all__ = ["DETECTORS", "Detector", "create_detector", "detector_from_config", "detector_names", "nms"]
