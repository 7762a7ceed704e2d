"""Tracking quality (MOT metrics) on generated scenes and the crowd clip."""
from __future__ import annotations

import tempfile
from pathlib import Path


from bench.common import CROWD, emit


def bench_tracking(results: list) -> None:
    """MOT metrics on generated scenes (crossings, an exit and re-entry, a hard cut): the tracker as it was
    (geometry only, no cut detection) against appearance + re-identification + cuts."""
    from pipelines.offline import DEFAULTS
    from streamfiqa.eval.tracking import mot_metrics, track_clip
    from streamfiqa.eval.synth import make_scene

    # faces unembedded as they were: appearance off alone now leaves selection its embeddings (pipeline.embed)
    before = ["tracker.appearance=off", "selection.rank=fast", "sources.shot_cuts=false", "tracker.reid_window_s=0"]
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (0, 1, 2):
            clip = Path(tmp) / f"scene{seed}.mp4"
            truth = make_scene(clip, seed=seed)
            for label, extra in (("before", before), ("after", [])):
                rows, events = track_clip(str(clip), [*extra, "quality.heavy=null"], DEFAULTS)
                m = mot_metrics(truth.frames, rows, shots=truth.shot_starts)
                emit(results, {"bench": "tracking", "scene_seed": seed, "tracker": label, **m,
                               "best_events": sum(e["event"] == "best" for e in events)})
    if CROWD.is_file():
        for label, extra in (("before", before), ("after", [])):
            _, events = track_clip(str(CROWD), extra, DEFAULTS)
            emit(results, {"bench": "tracking_crowd", "tracker": label,
                           "tracks_reported": sum(e["event"] == "best" for e in events)})
