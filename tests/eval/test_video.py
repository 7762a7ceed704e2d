"""The video protocol scores what was published: a part split off and a track merged into another count as the
event says (its time span, its merged tracks), not as the tracker's ids."""
import numpy as np

from streamfiqa.eval.video import ClipRun, gallery_edc, people_without_crop, summarise, track_report


def _run(events):
    """Tracker track 1: person A on frames 0-19, person B on 20-39; tracker track 2: person B on frames 0-19."""
    frame = np.r_[np.arange(40), np.arange(20)]
    track = np.r_[np.ones(40, int), np.full(20, 2)]
    n = len(frame)
    run = ClipRun("clip", track, frame, frame / 10.0, np.tile([0.0, 0, 10, 10], (n, 1)), np.ones(n, np.float32),
                  np.ones(n, np.float32), np.zeros((n, 9)), np.zeros((n, 4), np.float32),
                  np.zeros((0, 112, 112, 3), np.uint8), events, [], 40, (100, 100), fps=10.0)
    run.person = np.array(["A"] * 20 + ["B"] * 20 + ["B"] * 20, object)
    return run


def _best(tid, frame, first, last, **extra):
    return {"event": "best", "track_id": tid, "frame_index": frame, "box": [0, 0, 10, 10],
            "track": {"first_pts": first, "last_pts": last}, **extra}


def test_a_split_part_is_scored_on_its_own_faces():
    run = _run([_best(1, 5, 0.0, 1.9), _best(9, 30, 2.0, 3.9, split_from=1), _best(2, 3, 0.0, 1.9)])
    rows = track_report(run, np.linspace(0, 1, len(run)), min_faces=5)
    assert [(r["track"], r["faces"], r["mixed"]) for r in rows] == [(1, 20, False), (2, 20, False), (9, 20, False)]
    assert people_without_crop(run) == []


def test_a_track_merged_into_another_counts_its_faces_there():
    merged = [{"track_id": 2, "first_pts": 0.0, "last_pts": 1.9}]
    run = _run([_best(1, 5, 0.0, 3.9, merged=merged)])
    rows = track_report(run, np.linspace(0, 1, len(run)), min_faces=5)
    assert len(rows) == 1 and rows[0]["faces"] == 60 and rows[0]["mixed"] and rows[0]["persons"] == ["A", "B"]
    assert summarise(rows)["mixed_tracks"] == 1 and summarise(rows)["mixed_at"] == [f"{run.name}#1: A+B"]


def test_a_person_in_no_published_track_has_no_crop():
    run = _run([_best(1, 5, 0.0, 1.9)])
    assert people_without_crop(run) == ["B"]


def _probe_run(name, person, good, score, rng):
    """One track of 30 faces of ``person`` (a unit direction in 8-D), published at face 0 with ``score``; the
    published face is close to the person (``good``) or far from them."""
    direction = np.eye(8)[person]
    emb = direction + 0.05 * rng.standard_normal((30, 8))
    emb[0] = direction if good else np.roll(direction, 3) + 0.3 * direction
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    frame = np.arange(30)
    run = ClipRun(name, np.ones(30, int), frame, frame / 5.0, np.tile([0.0, 0, 10, 10], (30, 1)),
                  np.ones(30, np.float32), np.ones(30, np.float32), np.zeros((30, 9)), np.zeros((30, 4), np.float32),
                  np.zeros((0, 112, 112, 3), np.uint8), [_best(1, 0, 0.0, 6.0, quality={"score": score})], [], 30,
                  (100, 100), fps=5.0)
    run.person = np.array([f"p{person}"] * 30, object)
    run.fr["fr"] = emb.astype(np.float32)
    return run


def test_the_gallery_edc_falls_when_the_failing_published_crops_carry_the_lowest_scores():
    rng = np.random.default_rng(0)
    # eight people, one clip each (two for p0); the two crops that fail to match are the two scored lowest
    runs = [_probe_run(f"c{k}", k, k not in (2, 5), 0.1 + k / 100 if k in (2, 5) else 0.5 + k / 20, rng) for k in range(8)]
    runs.append(_probe_run("c0b", 0, True, 0.9, rng))
    result = gallery_edc(runs, "fr", gap_s=1.0)
    same = result["same_clip"]
    assert same["probes"] == 9 and same["persons"] == 8
    assert same["fnmr_at_0"] == round(2 / 9, 4)
    # the published score discards the two failing crops first, as the oracle does; random order does worse
    assert same["published score"] == same["oracle"]
    assert same["published score"]["pauc_0.3"] < same["random"]["pauc_0.3"]
    # only p0 is in two natural clips: two probes, each against p0's faces in the other clip
    assert result["other_clips"]["probes"] == 2 and result["other_clips"]["fnmr_at_0"] == 0.0
