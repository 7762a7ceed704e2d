"""Region detection on real video: windows around known faces find what full frames find, at a fraction of the work."""
import av
import numpy as np
import pytest

from conftest import shared_path


@pytest.fixture(scope="module")
def crowd():
    """The first 40 frames of the 1080p crowd clip and the embedded RetinaFace's full-frame faces in each."""
    from streamfiqa.detect import create_detector

    with av.open(str(shared_path("data/videos/crowd_walk_1080p.mp4"))) as c:
        frames = [f.to_ndarray(format="bgr24") for _, f in zip(range(40), c.decode(video=0))]
    det = create_detector("retinaface", min_face=20, score_threshold=0.7, max_side=960)
    return det, frames, [det.detect(f) for f in frames]


def matched(ref, got):
    from streamfiqa.track.matching import iou_matrix

    if not len(ref) or not len(got):
        return np.zeros(len(ref), bool), np.full(len(ref), -1)
    m = iou_matrix(ref.boxes, got.boxes)
    return m.max(1) > 0.5, m.argmax(1)


def test_windows_find_the_full_frame_faces_with_the_same_landmarks(crowd):
    from streamfiqa.detect.regions import RegionDetector

    det, frames, full = crowd
    regions = RegionDetector(det, full_every=5)
    got = [regions.detect_batch([f], ["crowd"])[0] for f in frames]
    assert regions.counts == {"full": 8, "windowed": 32, "windows": regions.counts["windows"]}
    assert regions.counts["windows"] >= 4 * 32  # several people a frame, one window each
    hits = total = 0
    errors = []
    for k in range(len(frames)):
        if k % 5 == 0:  # full frames are the detector's own output
            assert np.array_equal(got[k].boxes, full[k].boxes)
            continue
        ok, j = matched(full[k], got[k])
        hits, total = hits + int(ok.sum()), total + len(ok)
        for r in np.flatnonzero(ok):
            errors.append(np.abs(got[k].landmarks[j[r]] - full[k].landmarks[r]).mean() / full[k].sizes[r])
    # a face found in a window has its landmarks where the full frame puts them (to a few % of its size; the
    # window sees it larger, so the two disagree most on the smallest and most turned faces)
    assert np.median(errors) < 0.05 and np.percentile(errors, 95) < 0.1
    assert hits / total >= 0.85, f"windows found {hits} of the {total} faces full frames found"


def test_streams_keep_their_own_faces_and_forget_restarts_in_full(crowd):
    from streamfiqa.detect.regions import RegionDetector

    det, frames, full = crowd
    blank = np.zeros_like(frames[0])
    regions = RegionDetector(det, full_every=4)
    first = regions.detect_batch([frames[0], blank], ["a", "b"])
    assert len(first[0]) == len(full[0]) and len(first[1]) == 0
    second = regions.detect_batch([frames[1], frames[1]], ["a", "b"])
    # "a" looked only around its faces; "b" knew nobody, so it looked nowhere until its next full frame
    assert regions.counts == {"full": 2, "windowed": 2, "windows": len(first[0])}
    assert matched(full[1], second[0])[0].mean() >= 0.8 and len(second[1]) == 0
    regions.forget("a")
    regions.detect_batch([frames[2]], ["a"])
    assert regions.counts["full"] == 3


def test_a_crowd_too_dense_for_windows_is_detected_in_full(crowd):
    from streamfiqa.detect.regions import RegionDetector

    det, frames, _ = crowd
    regions = RegionDetector(det, full_every=5, window=512)  # 512² px a window: 2 cost more than the full frame
    for f in frames[:3]:
        regions.detect_batch([f], ["crowd"])
    assert regions.counts["full"] == 3 and regions.counts["windows"] == 0


def test_bad_settings_and_mismatched_keys_are_named(crowd):
    from streamfiqa.detect.regions import RegionDetector

    det, frames, _ = crowd
    with pytest.raises(ValueError, match="full_every >= 1"):
        RegionDetector(det, full_every=0)
    with pytest.raises(ValueError, match="one stream key per image"):
        RegionDetector(det).detect_batch(frames[:2], ["a"])


def test_a_fixed_input_detector_detects_in_full_where_windows_would_cost_a_frame_each(crowd):
    """SCRFD scales every image to its 640 × 640 input: a window costs a whole frame, so frames with known faces
    are detected in full (windows took 2x the time of full frames on every frame on the crowd clip)."""
    from streamfiqa.detect import create_detector
    from streamfiqa.detect.regions import RegionDetector

    _, frames, _ = crowd
    det = create_detector("scrfd", model_path=str(shared_path("models/scrfd/scrfd_500m_kps.onnx")), min_face=20,
                          score_threshold=0.5, max_side=960)
    assert det.fixed_input == 640
    regions = RegionDetector(det, full_every=5)
    got = [regions.detect_batch([f], ["crowd"])[0] for f in frames[:10]]
    assert regions.counts == {"full": 10, "windowed": 0, "windows": 0}
    assert all(np.array_equal(g.boxes, det.detect(f).boxes) for g, f in zip(got, frames))
