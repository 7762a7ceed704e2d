"""Offline processing of files and folders: every frame, as fast as the machine allows, plus a contact sheet."""
from streamfiqa.pipeline import build

DEFAULTS = {
    "pipeline": "offline",
    "sources.live": "false",
    "sources.queue_size": 8,
    "sources.decode_threads": 1,  # 2 cores: one decoder thread beside the runner; 0 (FFmpeg's choice) on more cores
    "output.contact_sheet": True,
    "detector.full_every": 5,  # windows around known faces between full frames: half the detector's work
    "quality.scorer": "fiqa_fast:precision=int8",  # the fast tier's INT8 model: same EDC, 1.5-2x faster on CPUs
    # no heavy tier: tracks rank by typicality, and on the development clips the heavy tier changed picks with no gain
    # (README, "Video protocol"); quality.heavy=fiqa_heavy with selection.rank=fast brings it back
    "quality.heavy": None,
    "selection.emit_updates": False,
    # files have no alert to deliver early: a lost track waits 5 s (not 2) for its person to come back, so someone who
    # walks behind another for 2.6 s keeps one track and one crop (the crowd clip; README, "Tracking quality")
    "tracker.reid_window_s": 5.0,
}


def run(sources, cfg, stop=None) -> int:
    """Process every source to its end; ``best`` event per track, contact sheet in ``--out``."""
    return build.run(sources, cfg, stop)
