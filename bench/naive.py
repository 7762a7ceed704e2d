"""The naive pipeline: same models, no threads, no batching, every face scored by every tier.

Decode (PyAV, main thread) → detect → for each face: align, tier-0, fast scorer (batch of one),
heavy scorer (batch of one) → keep the best per track. This is what a straightforward script
does; :mod:`streamfiqa.pipeline.runner` is measured against it.
"""
from __future__ import annotations

import time

import av
import numpy as np


def run_naive(path: str, cfg, max_frames: int = 0, heavy: bool = True) -> dict:
    from streamfiqa.align import Aligner
    from streamfiqa.detect import detector_from_config
    from streamfiqa.quality.tier0 import QualityAssessor
    from streamfiqa.quality.scorers import create_scorer
    from streamfiqa.track.tracker import Tracker

    q, t = cfg.quality, cfg.tracker
    det = detector_from_config(cfg.detector)
    aligner, assessor = Aligner(), QualityAssessor()
    fast = create_scorer(q.scorer, **q.scorer_args)
    slow = create_scorer(q.heavy or "fiqa_heavy", **q.heavy_args) if heavy else None
    own = det.score_scale
    tracker = Tracker(t.high_thresh or own.high, t.low_thresh or own.low, t.new_track_thresh or own.new, t.match_iou,
                      t.max_age, t.min_hits)
    best: dict = {}
    frames = faces_n = 0
    t0 = time.perf_counter()
    with av.open(path) as container:
        stream = container.streams.video[0]
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        for i, frame in enumerate(container.decode(stream)):
            if i % max(cfg.sources.stride, 1):
                continue
            img = frame.to_ndarray(format="bgr24")
            faces = det.detect(img)
            scores = []
            for k in range(len(faces)):
                crop = aligner.align(img, faces[np.array([k])])
                assessor.assess(faces[np.array([k])], crop.aligned)
                s = float(fast.score(crop.aligned)[0])
                if slow is not None:
                    s = float(slow.score(crop.aligned)[0])
                scores.append(s)
            for tid, k in tracker.update(faces).assignments:
                best[tid] = max(best.get(tid, -np.inf), scores[k])
            frames += 1
            faces_n += len(faces)
            if max_frames and frames >= max_frames:
                duration = (i + 1) * float(1 / stream.average_rate)
                break
    wall = time.perf_counter() - t0
    return {"frames": frames, "faces": faces_n, "wall_s": wall, "video_s": duration, "tracks": len(best)}
