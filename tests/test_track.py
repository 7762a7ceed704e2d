import numpy as np

from streamfiqa.track import Tracker, TrackState, iou_matrix
from streamfiqa.types import Faces


def faces(boxes, scores=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.full(len(boxes), 0.99) if scores is None else scores
    return Faces(boxes, scores, np.zeros((len(boxes), 5, 2)))


def test_iou():
    m = iou_matrix(np.array([[0, 0, 10, 10]], np.float32), np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32))
    np.testing.assert_allclose(m, [[1.0, 1 / 3]], rtol=1e-6)


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
    tr.update(faces([[300, 300, 350, 350]]))  # a new tentative track: not reported at flush
    ended = tr.flush("eof")
    assert sorted(t.track_id for t in ended) == [1, 2]
    assert {t.end_reason for t in ended} == {"eof"}
    assert tr.tracks == []
