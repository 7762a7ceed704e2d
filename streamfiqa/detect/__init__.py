"""Face detectors behind one interface; ``create_detector(name, **kwargs)`` builds one."""
from streamfiqa.detect.base import DETECTORS, Detector, nms
from streamfiqa.detect import mtcnn  # noqa: F401  (registers "mtcnn")


def create_detector(name: str, **kwargs) -> Detector:
    """Build the detector registered as ``name`` (valid: ``DETECTORS.names()``)."""
    from streamfiqa.detect import retinaface, scrfd, yunet  # noqa: F401  (register lazily: heavy deps)
    return DETECTORS.create(name, **kwargs)


def detector_from_config(d) -> Detector:
    """Build the detector a :class:`~streamfiqa.config.DetectorConfig` describes.

    Each detector gets the options it takes (:data:`OPTIONS`): ``threads`` and ``providers`` go to the ONNX
    Runtime detectors, ``backend`` (and for RetinaFace ``precision``) to those on the backend interface; YuNet runs in OpenCV and takes neither.
    """
    wanted = OPTIONS.get(d.name, ())
    extra = {k: getattr(d, k) for k in wanted}
    return create_detector(d.name, model_path=d.model_path, min_face=d.min_face, score_threshold=d.score_threshold,
                           max_faces=d.max_faces, max_side=d.max_side, **extra)


#: Per detector, the :class:`~streamfiqa.config.DetectorConfig` fields it takes beyond the common ones.
OPTIONS = {"mtcnn": ("threads", "providers"), "retinaface": ("threads", "providers", "backend", "precision"),
           "scrfd": ("providers", "backend"), "yunet": ()}


__all__ = ["DETECTORS", "Detector", "create_detector", "detector_from_config", "nms"]
