"""CCTV best-frame selection: many live cameras, early ``update`` alerts, ``best`` per track over ZeroMQ."""
from streamfiqa.pipeline import build

#: Applied before the user's config file and --set overrides.
DEFAULTS = {
    "pipeline": "cctv",
    "publish.endpoint": "tcp://127.0.0.1:5556",
    "quality.heavy": "fiqa_heavy",
    "quality.keyframes.top_k": 1,
    "quality.keyframes.max_per_track": 3,
    "quality.keyframes.threads": 1,
    "quality.keyframes.queue_size": 4,
    "selection.emit_updates": True,
    "sources.queue_size": 2,
}


def run(sources, cfg, stop=None) -> int:
    """Run CCTV selection until stopped (live sources reconnect forever by default)."""
    return build.run(sources, cfg, stop)
