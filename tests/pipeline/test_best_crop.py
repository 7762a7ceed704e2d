import numpy as np

from streamfiqa.events import Candidate, Event
from streamfiqa.pipeline.best_crop import BestSelector
from streamfiqa.pipeline.enroll import EnrollSelector
from streamfiqa.track.tracker import Track


def cand(score, frame=0, passed=True, yaw=0.0):
    return Candidate(score, "tier0", {"tier0": score}, {"yaw": yaw, "pitch": 0.0}, passed, [], frame, frame / 25,
                     0.0, np.zeros(4), np.zeros((5, 2)), 0.99, np.zeros((112, 112, 3), np.uint8),
                     np.zeros((50, 50, 3), np.uint8))


def ended(tid, reason="lost"):
    t = Track(tid, None)
    t.end_reason = reason
    return t


def test_best_event_carries_the_top_candidate_and_the_top_k():
    sel = BestSelector(top_k=2)
    for f, s in enumerate([0.3, 0.9, 0.5, 0.7]):
        assert sel.select("cam", f / 25, {1: cand(s, f)}, {1}, [], []) == []
    (ev,) = sel.select("cam", 1.0, {}, set(), [ended(1)], [])
    assert ev.kind == "best" and ev.candidate.frame_index == 1
    assert [c["frame_index"] for c in ev.extra["candidates"]] == [1, 3]
    assert ev.track["end_reason"] == "lost" and ev.track["hits"] == 4


def test_track_without_passing_candidate_still_reports_with_gate_failure():
    sel = BestSelector()
    sel.select("cam", 0.0, {1: cand(0.4, passed=False)}, {1}, [], [])
    (ev,) = sel.select("cam", 0.1, {}, set(), [ended(1, "eof")], [])
    assert ev.metadata()["quality"]["gates_passed"] is False


def test_updates_after_dwell_and_only_on_margin():
    sel = BestSelector(emit_updates=True, min_dwell_s=1.0, update_margin=0.1)
    kinds = []
    for f, s in enumerate([0.5] * 25 + [0.55, 0.65, 0.66]):
        kinds += [(f, e.kind) for e in sel.select("cam", f / 25, {1: cand(s, f)}, {1}, [], [])]
    assert kinds == [(25, "update"), (26, "update")]


def test_dropped_tentative_tracks_are_forgotten():
    sel = BestSelector()
    sel.select("cam", 0.0, {7: cand(0.9)}, set(), [], [])
    sel.select("cam", 0.1, {}, set(), [], [7])
    assert sel.select("cam", 0.2, {}, set(), [ended(7)], []) == []


def test_enrollment_needs_count_pose_diverse_crops_above_threshold():
    en = EnrollSelector(count=3, threshold=0.6, min_pose_delta=10)
    assert en.select("cam", 1, cand(0.9, yaw=0)) == []
    assert en.select("cam", 1, cand(0.95, yaw=3)) == []      # same pose: replaces, no new member
    assert en.select("cam", 1, cand(0.5, yaw=30)) == []      # below threshold
    assert en.select("cam", 1, cand(0.7, yaw=-20)) == []
    events = en.select("cam", 1, cand(0.8, yaw=20))
    assert [e.kind for e in events] == ["enrolled"] * 3 and en.done
    assert sorted(e.candidate.components["yaw"] for e in events) == [-20, 3, 20]
    assert "timed out" in en.timeout_event("cam", 5.0).extra["message"]
    # a run stopped, or a clip that ended, before enrolment completed is said to be so, not a timeout
    stopped = en.timeout_event("cam", 5.0, reason="shutdown").extra
    assert stopped["reason"] == "shutdown" and "stopped" in stopped["message"] and "timed out" not in stopped["message"]


def test_event_metadata_schema_1():
    ev = Event("best", "cam", 3, cand(0.8, 10), {"end_reason": "eof"})
    meta = ev.metadata()
    assert meta["schema"] == 1 and meta["event"] == "best" and ev.topic == "face.best.cam"
    assert meta["quality"]["decided_by"] == "tier0" and meta["crops"]["display"] == [50, 50]
    jpg, png = ev.encoded_crops()
    assert jpg[:2] == b"\xff\xd8" and png[:4] == b"\x89PNG"


def test_snapshot_gives_open_tracks_best_without_ending_them():
    sel = BestSelector(top_k=2)
    for f, s in enumerate([0.3, 0.9, 0.5]):
        sel.select("cam", f / 25, {1: cand(s, f), 2: cand(0.2, f)}, {1, 2}, [], [])
    snap = sel.snapshot("cam", {1}, "worker_lost")
    assert [(e.kind, e.track_id, e.candidate.frame_index, e.track["end_reason"]) for e in snap] == \
        [("best", 1, 1, "worker_lost")]
    (ev,) = sel.select("cam", 1.0, {}, set(), [ended(1)], [])  # still open: it ends normally later
    assert ev.track["end_reason"] == "lost" and ev.track["hits"] == 3


def real_candidates(group_photo, n_frames=12):
    """Per face of the group photo, ``n_frames`` candidates of JPEG-varied crops with the fast scorer's score and
    embedding (as the pipeline makes them)."""
    from streamfiqa.align import Aligner
    from streamfiqa.detect import create_detector
    from streamfiqa.eval.degrade import jpeg
    from streamfiqa.quality.scorers import create_scorer

    crops = Aligner().align(group_photo, create_detector("retinaface").detect(group_photo))
    fast = create_scorer("fiqa_fast")
    out = []
    for d in range(3):
        aligned = np.stack([jpeg(crops.aligned[d], 40 + 5 * f) for f in range(n_frames)])
        q, emb = fast.score_and_embed(aligned)
        row = []
        for f in range(n_frames):
            c = cand(float(q[f]), f)
            c.fast_score, c.embedding, c.display = float(q[f]), emb[f], crops.display[d]
            c.components["sharpness"] = 100.0
            row.append(c)
        out.append(row)
    return out


def test_a_second_track_of_the_same_person_in_the_same_frames_merges_into_the_first(group_photo):
    a, b = real_candidates(group_photo)[:2]
    sel = BestSelector()
    for f in range(len(a)):
        sel.select("cam", f / 25, {1: a[f], 2: a[f], 3: b[f]}, {1, 2, 3}, [], [])
    events = sel.select("cam", 1.0, {}, set(), [ended(2), ended(3), ended(1)], [])
    assert sorted(e.track_id for e in events) == [1, 3] and sel.rejected == {"duplicate": 1}
    merged = {e.track_id: e.metadata().get("merged") for e in events}  # the event says which faces it covers
    assert [m["track_id"] for m in merged[1]] == [2] and merged[3] is None


def test_an_unrecognisable_track_is_published_only_when_a_second_detector_sees_a_face(group_photo):
    from streamfiqa.quality.faceness import FaceCheck

    (a, *_), blank = real_candidates(group_photo), np.full((120, 120, 3), 128, np.uint8)
    sel = BestSelector(face_floor=1.0, face_check=FaceCheck())  # every real face is under this floor
    for f, c in enumerate(a):
        sel.select("cam", f / 25, {1: c}, {1}, [], [])
    assert [e.track_id for e in sel.select("cam", 1.0, {}, set(), [ended(1)], [])] == [1]
    for f, c in enumerate(a):
        c.display = blank
        sel.select("cam", 2 + f / 25, {2: c}, {2}, [], [])
    assert sel.select("cam", 3.0, {}, set(), [ended(2)], []) == [] and sel.rejected == {"unrecognisable": 1}


def test_a_track_given_a_merged_track_s_earlier_faces_still_splits_by_time(group_photo):
    """A merge hands a track faces older than its own (the twin began first); if the track then turns out to hold two
    people, the split must fall between them in time (it once fell before every face and failed on an empty part)."""
    a, b = real_candidates(group_photo)[:2]
    sel = BestSelector(new_id=iter(range(100, 200)).__next__)
    for f, c in enumerate(b):  # the track's own faces: person b from 1 s on
        c.pts = 1.0 + f / 25
        sel.select("cam", c.pts, {1: c}, {1}, [], [])
    for f, c in enumerate(a):  # the merged twin's faces, person a, before any of them
        c.pts = f / 25
        sel._tracks[1].add(c, sel.pool, sel.how)
    events = sel.select("cam", 2.0, {}, set(), [ended(1)], [])
    assert len(events) == 2 and events[1].extra["split_from"] == 1
    assert events[0].candidate.pts < 1.0 <= events[1].candidate.pts


def test_eyes_less_open_than_usual_lose_a_little_and_shut_eyes_go_last():
    from streamfiqa.quality.expression import by_eyes

    cands = [cand(s, f) for f, s in enumerate((0.95, 0.94, 0.93, 0.90))]
    for c in cands:
        c.decided_by = "typicality"
    eyes = np.array([[0.10, 0.0, 1.0], [0.22, 0.0, 1.0], [0.35, 0.0, 1.0], [np.nan, np.nan, np.nan]])
    # shut eyes (0.10 < 0.2) go last whatever their key; wider eyes than the median (0.22) earn nothing
    assert [c.frame_index for c in by_eyes(cands, eyes, 0.1, 0.2)] == [1, 2, 3, 0]
    assert [c.frame_index for c in by_eyes(cands, eyes, 0.0, None)] == [0, 1, 2, 3]
    wide = eyes.copy()
    wide[[0, 2], 0] = 0.4  # median 0.4: frame 1 (0.21 short of it) loses 0.019 and falls behind 0.93
    wide[1, 0] = 0.21
    assert [c.frame_index for c in by_eyes(cands, wide, 0.1, 0.2)] == [0, 2, 1, 3]
    for c in cands:  # on the fast score's scale the weight does not apply, the shut-eyes rule does
        c.decided_by = "fiqa_fast"
    assert [c.frame_index for c in by_eyes(cands, wide, 0.1, 0.2)] == [0, 1, 2, 3]
    assert [c.frame_index for c in by_eyes(cands, eyes, 0.1, 0.2)] == [1, 2, 3, 0]


def test_a_second_look_re_ranks_a_typical_track_s_leaders_and_leaves_a_fast_ranked_one(group_photo):
    from streamfiqa.quality.second_look import SecondLook

    for rank, looked in (("typical", True), ("fast", False)):
        (a, *_) = real_candidates(group_photo)
        sel = BestSelector(rank=rank, second_look=SecondLook())
        for f, c in enumerate(a):
            sel.select("cam", f / 25, {1: c}, {1}, [], [])
        (ev,) = sel.select("cam", 1.0, {}, set(), [ended(1)], [])
        assert ("typicality_facenet" in ev.candidate.scores) is looked
        if looked:  # the event's score is the second recogniser's typicality, its finalists in that order
            assert abs(ev.candidate.score - ev.candidate.scores["typicality_facenet"]) < 1e-5
            scores = [c["score"] for c in ev.extra["candidates"]]
            assert scores == sorted(scores, reverse=True) and ev.metadata()["quality"]["decided_by"] == "typicality"


def test_a_finisher_ends_tracks_off_the_callers_thread_with_the_same_events_in_the_order_they_ended(group_photo):
    """The second look of ended tracks runs in the finisher's threads (the runner's own, two workers):
    ``select`` returns before it is done, ``finished`` gives the same ``best`` events as ending them in place, in
    the order the tracks ended though two are ended at once, and meanwhile a snapshot shows each as it stands
    without it."""
    import threading

    from streamfiqa.pipeline.best_crop import FINISH_WORKERS, track_finisher
    from streamfiqa.quality.second_look import SecondLook

    gate = threading.Event()
    outcomes = {}
    for threaded in (False, True):
        faces, look = real_candidates(group_photo), SecondLook()  # fresh: a track's end writes into its candidates
        finisher = track_finisher() if threaded else None
        sel = BestSelector(second_look=look, finisher=finisher)
        for f in range(len(faces[0])):
            sel.select("cam", f / 25, {t + 1: faces[t][f] for t in range(3)}, {1, 2, 3}, [], [])
        if threaded:
            for _ in range(FINISH_WORKERS):  # every worker is busy: nothing of the tracks' ends can be done yet
                finisher.submit(gate.wait)
        events = sel.select("cam", 1.0, {}, set(), [ended(3), ended(1), ended(2)], [])
        if threaded:
            assert events == [] and sel.finishing == 3 and sel.finished() == []
            snap = sel.snapshot("cam", set(), "worker_lost")  # what a fan-in would publish if the process died now
            assert [e.track_id for e in snap] == [3, 1, 2]
            assert all("typicality_facenet" not in e.candidate.scores for e in snap)
            gate.set()
            events = sel.finished(wait=True)
            finisher.shutdown()
        assert sel.finishing == 0 and look.looked == 3 * 8
        outcomes[threaded] = [(e.track_id, e.candidate.frame_index, e.extra["candidates"]) for e in events]
    assert [t for t, *_ in outcomes[True]] == [3, 1, 2] and outcomes[True] == outcomes[False]


def test_enrolment_collects_for_its_window_then_enrols_the_most_typical_crop(group_photo):
    """Within one track the fast score ranks faces no better than chance, so a cooperative subject's first good crop
    is not the one to keep: nothing is enrolled until ``window_s`` has passed since the first accepted crop, and then
    the crop most like the subject's other good crops is (its cosine to their mean embedding)."""
    row = real_candidates(group_photo)[0]  # one face, 12 JPEG-varied crops, scored and embedded by the fast tier
    emb = np.stack([c.embedding for c in row])
    row = [row[i] for i in np.argsort(emb @ emb.mean(0))]  # the least typical first
    en = EnrollSelector(count=1, threshold=0.0, window_s=0.3)
    for k, c in enumerate(row):
        c.frame_index, c.pts = k, k / 25
        events = en.select("cam", 1, c)
        if k < 8:  # 0.28 s after the first
            assert events == [] and not en.done
            continue
        seen = row[:9]
        fast = np.array([x.fast_score for x in seen])
        ok = fast >= fast.max() - 0.2  # the quality band (Typicality's default), every crop equally sharp
        e = np.stack([x.embedding for x in seen])
        typ = np.where(ok, e @ (e[ok].mean(0) / np.linalg.norm(e[ok].mean(0))), -np.inf)
        (ev,) = events
        assert ev.kind == "enrolled" and ev.candidate is seen[int(np.argmax(typ))] and ev.candidate is not row[0]
        break


def test_enrolment_ends_when_its_window_does_even_without_the_subject_in_frame():
    """The subject gave a good crop, then looked away: the window's end enrols what was collected, not the subject's
    return."""
    en = EnrollSelector(count=1, threshold=0.5, window_s=1.0)
    assert en.select("cam", 1, cand(0.8, 0)) == [] and en.tick("cam", 0.9) == []
    (ev,) = en.tick("cam", 1.0)
    assert ev.kind == "enrolled" and ev.candidate.frame_index == 0 and en.done and en.tick("cam", 2.0) == []


def test_enrolment_s_threshold_is_on_the_predicted_utility_not_the_scorer_s_own_scale():
    enrol = EnrollSelector(count=1, threshold=0.45)
    c = cand(0.9)  # 0.9 on a scorer's own scale, a predicted utility of 0.3: under the threshold
    c.utility = 0.3
    assert enrol.select("cam", 1, c) == [] and enrol.pool is None and enrol.best_seen == 0.3
    assert enrol.select("cam", 1, cand(0.5)) and enrol.done  # a utility-scale score is its own utility
