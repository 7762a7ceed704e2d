"""CCTV best-frame selection: many live cameras, early ``update`` alerts, ``best`` per track over ZeroMQ."""
from streamfiqa.pipeline import build

#: Applied before the user's config file and --set overrides.
DEFAULTS = {
    "pipeline": "cctv",
    "publish.endpoint": "tcp://127.0.0.1:5556",
    "quality.heavy": None,  # tracks rank by typicality (see pipelines/offline.py)
    "selection.emit_updates": True,
    "sources.queue_size": 2,
}


def run(sources, cfg, stop=None) -> int:
    """Run CCTV selection until stopped (live sources reconnect forever by default)."""
    return build.run(sources, cfg, stop)
