"""Keyframe re-scoring: sampler decisions, the bounded worker, the fusion order, and the pipeline."""
import threading
import time

import numpy as np

from streamfiqa.events import Candidate
from streamfiqa.pipeline.rescore import HeavyWorker, Job, KeyframeSampler
from streamfiqa.pipeline.best_crop import BestSelector


def cand(score, pts=0.0):
    z = np.zeros((112, 112, 3), np.uint8)
    return Candidate(score, "crop_iqa", {"crop_iqa": score}, {}, True, [], 0, pts, 0.0, np.zeros(4),
                     np.zeros((5, 2)), 1.0, z, z)


class SlowScorer:
    name = "slow"

    def __init__(self):
        self.gate = threading.Event()

    def score(self, aligned):
        self.gate.wait(5)
        return np.full(len(aligned), 0.5, np.float32)


def test_sampler_picks_top_candidates_and_periodic_ones():
    s = KeyframeSampler(top_k=1, period_s=2.0)
    assert s.wants(0, 1, cand(0.9, 0.0), rank=0) == "top"
    assert s.wants(0, 1, cand(0.1, 0.5), rank=None) is None
    assert s.wants(0, 1, cand(0.1, 2.5), rank=None) == "periodic"
    assert s.wants(0, 1, cand(0.1, 3.0), rank=2) is None


def test_saturated_worker_skips_and_counts_without_blocking():
    scorer = SlowScorer()
    w = HeavyWorker(scorer, queue_size=1, batch=1)
    t0 = time.perf_counter()
    accepted = [w.submit(Job(0, i, cand(0.1))) for i in range(6)]
    assert time.perf_counter() - t0 < 0.5  # never waits for the scorer
    assert w.skipped >= 4 and w.stats()["skipped"] == w.skipped
    scorer.gate.set()
    w.drain(5)
    results = w.results()
    assert len(results) == sum(accepted) and all(s == 0.5 for _, s in results)
    w.close()


def test_a_waiting_submit_skips_nothing_and_the_worker_sets_its_own_threads():
    """Files: a full queue makes the caller wait for room instead of skipping; a drain that may use every core has
    the worker (whose torch threads they are) take them, and gives them back after."""
    import torch

    seen = []

    class Counting(SlowScorer):
        def score(self, aligned):
            seen.append(torch.get_num_threads())
            return super().score(aligned)

    scorer = Counting()
    w = HeavyWorker(scorer, queue_size=1, batch=1, threads=1)
    threading.Timer(0.3, scorer.gate.set).start()
    t0 = time.perf_counter()
    assert all(w.submit(Job(0, i, cand(0.1)), wait=5) for i in range(4))
    assert time.perf_counter() - t0 >= 0.25 and w.skipped == 0  # it waited for the scorer instead
    w.drain(5, all_cores=True, stall=True)
    assert len(w.results()) == 4 and w.stats()["queue"] == 0
    import os

    scorer.gate.clear()
    w.submit(Job(0, 8, cand(0.1)))  # the worker holds this one (the gate is shut) ...
    time.sleep(0.2)
    w.submit(Job(0, 9, cand(0.1)))  # ... and this one waits in the queue while the drain begins
    drain = threading.Thread(target=w.drain, args=(5,), kwargs={"all_cores": True})
    drain.start()
    time.sleep(0.2)
    scorer.gate.set()
    drain.join()
    assert seen[0] == 1 and seen[-1] == (os.cpu_count() or 1) and len(w.results()) == 2
    # a worker stuck on one batch longer than the wait: the waiting caller gives up on it, counted as skipped
    scorer.gate.clear()
    w.submit(Job(0, 10, cand(0.1)))
    time.sleep(0.2)
    w.submit(Job(0, 11, cand(0.1)))  # the queue (1) is full behind the stuck batch
    t0 = time.perf_counter()
    assert not w.submit(Job(0, 12, cand(0.1)), wait=0.5) and w.skipped == 1
    assert time.perf_counter() - t0 < 2.0
    scorer.gate.set()
    w.close()


def test_one_scale_per_track_heavy_ranks_only_when_it_scored_every_finalist():
    sel = BestSelector(top_k=3)
    a, b, c = cand(0.9, 0.0), cand(0.8, 0.1), cand(0.7, 0.2)
    for x in (a, b, c):
        sel.select("s", x.pts, {1: x}, {1}, [], [])
    assert sel.rank(1, a) == 0 and sel.finalists(1) == [a, b, c]
    c.rescore("heavy", 0.2)
    a.rescore("heavy", 0.1)
    assert sel.best_of(1) is a  # b has no heavy score yet: the fast order stands, no mixing of scales
    b.rescore("heavy", 0.3)
    assert sel.best_of(1) is b
    (event,) = sel.select("s", 1.0, {}, set(), [_ended(1)], [])
    meta = event.metadata()
    assert meta["quality"]["decided_by"] == "heavy" and meta["quality"]["tier"] == "heavy"
    assert meta["quality"]["scores"] == {"crop_iqa": 0.8, "heavy": 0.3}
    listed = meta["candidates"]
    assert [x["score"] for x in listed] == [0.3, 0.2, 0.1] and all(x["decided_by"] == "heavy" for x in listed)
    assert [x["fast_score"] for x in listed] == [0.8, 0.7, 0.9]
    failed = cand(0.6)
    failed.rescore("heavy", float("nan"))  # a failed heavy score is recorded but decides nothing
    assert not failed.has_heavy and failed.score == 0.6


def _ended(tid):
    from streamfiqa.track.kalman import KalmanBox
    from streamfiqa.track.tracker import Track

    t = Track(tid, KalmanBox(np.array([0, 0, 10, 10], np.float32)))
    t.end_reason = "lost"
    return t


def test_offline_run_carries_heavy_scores_and_counts(synth_clip, tmp_path):
    import json

    from pipelines import offline
    from streamfiqa.config import load_config
    from streamfiqa.pipeline.build import build_runner
    from streamfiqa.io.specs import parse_sources

    path, _ = synth_clip
    # the heavy tier ranks finalists when tracks rank by quality score (selection.rank=fast)
    cfg = load_config(overrides=[f"output.dir={tmp_path}", "stats_interval_s=0", "quality.heavy=crop_iqa",
                                 "quality.heavy_args={}", "selection.rank=fast"], base=offline.DEFAULTS)
    from streamfiqa.pipeline.build import build_sinks

    runner = build_runner(cfg, parse_sources([str(path)]), build_sinks(cfg))
    assert runner.run() == 0
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert len(events) == 3
    for e in events:
        q = e["quality"]
        assert q["tier"] == "heavy" and q["decided_by"] == "crop_iqa"
        assert set(q["scores"]) == {"tier0", "fiqa_fast", "crop_iqa"}
        assert all("heavy_score" in c for c in e["candidates"])  # every finalist got its end keyframe
    heavy = runner.stats()["heavy"]
    assert heavy["done"] >= 3 and heavy["submitted"] == heavy["done"] and heavy["skipped"] == 0  # a file: none
