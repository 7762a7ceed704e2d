"""Face detectors behind one interface; ``create_detector(name, **kwargs)`` builds one."""
from streamfiqa.detect.base import DETECTORS, Detector, nms
from streamfiqa.detect import mtcnn  # noqa: F401  (registers "mtcnn")


def create_detector(name: str, **kwargs) -> Detector:
    """Build the detector registered as ``name`` (valid: ``DETECTORS.names()``)."""
    from streamfiqa.detect import scrfd, yunet  # noqa: F401  (register lazily: heavy deps)
    return DETECTORS.create(name, **kwargs)


def detector_from_config(d) -> Detector:
    """Build the detector a :class:`~streamfiqa.config.DetectorConfig` describes.

    ``threads`` applies to MTCNN's sessions and ``backend`` to SCRFD; the other detectors take neither.
    """
    extra = {"threads": d.threads} if d.name == "mtcnn" else {"backend": d.backend} if d.name == "scrfd" else {}
    return create_detector(d.name, model_path=d.model_path, min_face=d.min_face, score_threshold=d.score_threshold,
                           max_faces=d.max_faces, max_side=d.max_side, providers=d.providers, **extra)


__all__ = ["DETECTORS", "Detector", "create_detector", "detector_from_config", "nms"]
