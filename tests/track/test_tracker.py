import numpy as np

from streamfiqa.track.matching import iou_matrix, nested
from streamfiqa.track.tracker import Tracker, TrackState
from streamfiqa.types import Faces


def faces(boxes, scores=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.full(len(boxes), 0.99) if scores is None else scores
    return Faces(boxes, scores, np.zeros((len(boxes), 5, 2)))


def test_iou():
    m = iou_matrix(np.array([[0, 0, 10, 10]], np.float32), np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32))
    np.testing.assert_allclose(m, [[1.0, 1 / 3]], rtol=1e-6)


def test_a_box_is_nested_only_inside_a_bigger_one():
    face, part = [60, 30, 210, 225], [125, 126, 200, 220]  # a face and its nose and mouth found as a face
    assert nested(part, [face]) and not nested(face, [part])
    assert not nested([185, 185, 230, 240], [face])  # a face half over its edge (a newcomer walking past)
    assert not nested(part, []) and not nested(part, [part])  # itself, or one of the same size, is no container


def test_two_moving_faces_keep_their_ids():
    tr = Tracker(min_hits=2)
    ids = []
    for f in range(20):
        a = [10 + 3 * f, 10, 60 + 3 * f, 60]
        b = [300 - 3 * f, 200, 350 - 3 * f, 250]
        ids.append(tr.update(faces([a, b])).assignments)
    assert ids[-1] == [(1, 0), (2, 1)]
    assert all(a == [(1, 0), (2, 1)] for a in ids)


def test_low_score_detection_keeps_a_track_alive_byte_style():
    tr = Tracker(high_thresh=0.9, low_thresh=0.5, min_hits=1, max_age=0)
    tr.update(faces([[0, 0, 50, 50]], np.array([0.95])))
    up = tr.update(faces([[2, 0, 52, 50]], np.array([0.6])))  # low score: stage 2 match
    assert up.assignments == [(1, 0)] and not up.ended
    up = tr.update(faces([[4, 0, 54, 50]], np.array([0.6])))
    assert up.assignments == [(1, 0)]
    # A low-score detection never starts a track.
    assert tr.update(faces([[4, 0, 54, 50], [300, 300, 350, 350]], np.array([0.95, 0.6]))).assignments == [(1, 0)]


def test_tentative_tracks_need_min_hits_and_are_dropped_silently():
    tr = Tracker(min_hits=3)
    tr.update(faces([[0, 0, 50, 50]]))
    tr.update(faces([[1, 0, 51, 50]]))
    up = tr.update(faces([]))
    assert up.dropped == [1] and up.ended == []


def test_lost_after_max_age_and_recovered_before():
    tr = Tracker(min_hits=1, max_age=3)
    tr.update(faces([[0, 0, 50, 50]]))
    for _ in range(3):
        assert tr.update(faces([])).ended == []
    assert tr.tracks[0].state is TrackState.LOST
    assert tr.update(faces([[0, 0, 50, 50]])).assignments == [(1, 0)]
    assert tr.tracks[0].state is TrackState.CONFIRMED
    for _ in range(3):
        tr.update(faces([]))
    ended = tr.update(faces([])).ended
    assert [t.track_id for t in ended] == [1] and ended[0].end_reason == "lost"


def test_flush_ends_every_confirmed_track_with_the_reason():
    tr = Tracker(min_hits=2)
    for f in range(3):
        tr.update(faces([[0, 0, 50, 50], [100, 0, 150, 50]]))
    tr.update(faces([[300, 300, 350, 350]]))  # a new tentative track: not reported at flush, but counted
    ended = tr.flush("eof")
    assert sorted(t.track_id for t in ended) == [1, 2] and tr.unconfirmed == 1
    assert {t.end_reason for t in ended} == {"eof"}
    assert tr.tracks == []


def _unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def test_appearance_refuses_a_geometric_match_with_another_person():
    tr = Tracker(min_hits=1, max_age=5, min_similarity=0.3)
    a, b = _unit([1, 0, 0]), _unit([0, 1, 0])
    box = [100, 100, 150, 150]
    for _ in range(3):
        first = tr.update(faces([box]), np.stack([a])).assignments
    # someone else appears exactly where the first person was: a new track, not a continuation
    other = tr.update(faces([box]), np.stack([b])).assignments
    assert other[0][0] != first[0][0]


def test_a_face_that_jumps_past_the_iou_gate_between_two_frames_keeps_its_track():
    """At a low processed rate (cctv: 5 frames a second) a walking face can move further than the IoU gate in one
    frame: its track, unmatched on that frame, is re-identified by appearance (within reach), as a lost one would
    be, instead of the face starting a second track; someone else there still starts one."""
    a, b = _unit([1, 0.1, 0]), _unit([0, 1, 0])
    for emb, same in ((a, True), (b, False)):
        tr = Tracker(min_hits=1, max_age=5, reid_similarity=0.5)
        for f in range(3):
            tid = tr.update(faces([[100, 100, 160, 170]]), a[None], now=f * 0.2).assignments[0][0]
        # 45 px down and 20 % larger in 0.2 s: IoU 0.17 with the last box, far under match_iou
        moved = tr.update(faces([[96, 145, 168, 229]]), emb[None], now=0.6).assignments
        assert (moved[0][0] == tid) is same


def test_lost_person_resumes_anywhere_within_the_reid_window():
    tr = Tracker(min_hits=1, max_age=2, reid_similarity=0.6, reid_window_s=1.0)
    a = _unit([1, 0.1, 0])
    for f in range(3):
        tid = tr.update(faces([[10, 10, 60, 60]]), a[None], now=f * 0.04).assignments[0][0]
    for f in range(3, 15):  # gone (behind a pillar) for 12 frames, longer than max_age
        assert tr.update(faces([]), np.zeros((0, 3)), now=f * 0.04).ended == []
    back = tr.update(faces([[400, 300, 450, 350]]), a[None], now=15 * 0.04).assignments
    assert back == [(tid, 0)]
    # past the window the track ends as lost
    ended = []
    for f in range(16, 60):
        ended += tr.update(faces([]), np.zeros((0, 3)), now=f * 0.04).ended
    assert [t.track_id for t in ended] == [tid]


def test_shot_cut_detector_flags_a_change_of_scene_not_motion():
    from streamfiqa.io.shots import ShotCutDetector

    rng = np.random.default_rng(0)
    scene1 = np.full((360, 640, 3), (40, 120, 200), np.uint8) + rng.integers(0, 30, (360, 640, 3), dtype=np.uint8)
    scene2 = np.full((360, 640, 3), (200, 60, 30), np.uint8) + rng.integers(0, 30, (360, 640, 3), dtype=np.uint8)
    det = ShotCutDetector()
    flags = []
    for f in range(20):
        img = (scene1 if f < 10 else scene2).copy()
        x = 20 + 15 * f
        img[100:200, x:x + 100] = 255  # a moving bright object
        flags.append(det.is_cut(img))
    assert flags == [False] * 10 + [True] + [False] * 9


def test_first_id_lets_a_resumed_source_continue_above_its_old_ids():
    tr = Tracker(min_hits=1, first_id=7)
    assert tr.update(faces([[10, 10, 60, 60]])).assignments == [(7, 0)]


def test_a_face_whose_look_moved_continues_only_while_its_pixels_stay_within_its_usual_change():
    """The cut rule's face check: a face at the same place whose embedding moved (a small compressed face, another
    detection pass) still continues when its own pixels changed no more than ``still`` times its usual (the 90th
    percentile of its recent changes); a jump of its pixels, or no usual known yet, leaves it to the embedding."""
    tr = Tracker(min_hits=1)
    a, b = np.eye(4, dtype=np.float32)[0], np.array([0.7, 0.71, 0, 0], np.float32)  # cosine 0.7 < 0.9
    box = [[100, 100, 200, 220]]
    for k in range(3):
        tr.update(faces(box), a[None], changes=np.array([0.10 + 0.01 * k]))
    assert not tr.continues(faces(box), b[None], changes=np.array([0.1]), still=2.5)  # fewer than 5 known
    for k in range(5):
        tr.update(faces(box), a[None], changes=np.array([0.10 + 0.01 * k]))
    usual = tr.tracks[0].usual_change()
    assert 0.1 < usual < 0.15
    assert tr.continues(faces(box), a[None])  # the look agrees: continues whatever the pixels
    assert tr.continues(faces(box), b[None], changes=np.array([2.4 * usual]), still=2.5)
    assert not tr.continues(faces(box), b[None], changes=np.array([2.6 * usual]), still=2.5)
    assert not tr.continues(faces(box), b[None], changes=np.array([np.nan]), still=2.5)  # too small to say
    assert not tr.continues(faces(box), b[None], changes=np.array([0.0]), still=0)  # the pixel check off
    assert not tr.continues(faces([[400, 100, 500, 220]]), a[None], changes=np.array([0.0]), still=2.5)  # elsewhere
