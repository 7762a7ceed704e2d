"""Face detectors behind one interface; ``create_detector(name, **kwargs)`` builds one."""
from streamfiqa.detect.base import DETECTORS, Detector, nms
from streamfiqa.detect import mtcnn  # noqa: F401  (registers "mtcnn")


def create_detector(name: str, **kwargs) -> Detector:
    """Build the detector registered as ``name`` (valid: ``DETECTORS.names()``)."""
    from streamfiqa.detect import scrfd, yunet  # noqa: F401  (register lazily: heavy deps)
    return DETECTORS.create(name, **kwargs)


__all__ = ["DETECTORS", "Detector", "create_detector", "nms"]
