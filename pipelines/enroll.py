"""Video enrolment: one cooperative subject; the most typical good, pose-diverse crops of a few seconds, then stop."""
from streamfiqa.pipeline import build

DEFAULTS = {
    "pipeline": "enroll",
    "detector.max_faces": 1,  # the largest face is the subject
    "detector.min_face": 60,  # a cooperative subject is close to the camera: stricter size and pose gates
    "quality.min_inter_eye": 30,
    "quality.max_yaw": 45,
    "quality.max_pitch": 35,
    "publish.endpoint": "tcp://127.0.0.1:5556",
    "selection.emit_updates": False,
}


def run(sources, cfg, stop=None) -> int:
    """Run enrolment; exit code 0 when enrolled, 3 when it timed out or the source ended first."""
    return build.run(sources, cfg, stop)
