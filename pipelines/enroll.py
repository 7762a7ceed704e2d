"""Video enrolment: one cooperative subject; stop once enough good, pose-diverse crops are collected."""
from streamfiqa.pipeline import build

DEFAULTS = {
    "pipeline": "enroll",
    "detector.max_faces": 1,
    "selection.emit_updates": False,
}


def run(sources, cfg, stop=None) -> int:
    """Run enrolment; exit code 0 when enrolled, 3 when it timed out or the source ended first."""
    return build.run(sources, cfg, stop)
