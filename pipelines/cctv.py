"""CCTV best-frame selection: many live cameras, early ``update`` alerts, ``best`` per track over ZeroMQ."""
from streamfiqa.pipeline import build

#: Applied before the user's config file and --set overrides.
DEFAULTS = {
    "pipeline": "cctv",
    "publish.endpoint": "tcp://127.0.0.1:5556",
    "quality.heavy": None,  # tracks rank by typicality (see pipelines/offline.py)
    "selection.emit_updates": True,
    "sources.max_fps": 5,  # 5 frames a second per camera: 8 cameras on 2 cores, crops as good as at 10 (README)
    "sources.queue_size": 4,  # 0.8 s at max_fps (track ends run beside the loop: selection.finish_thread)
    "sources.decode_threads": 1,  # one decoder thread per camera: the least CPU when cameras share few cores
    "detector.min_face": 24,
    "detector.max_side": 960,
    "detector.full_every": 3,  # the full frame 1 in 3 (0.6 s); windows around known faces between
    "detector.thread": True,  # detection pipelined with scoring: one Python loop is too few for many cameras
    "tracker.max_age": 10,  # processed frames: 2 s at max_fps 5
}


def run(sources, cfg, stop=None) -> int:
    """Run CCTV selection until stopped (live sources reconnect forever by default)."""
    return build.run(sources, cfg, stop)
