"""Shot cuts on real clips of the development half (../shared/data/videos/talking)."""
import av
import numpy as np
import pytest

from conftest import shared_path
from streamfiqa.io.shots import ShotCutDetector


@pytest.mark.parametrize("name, frame", [("OpenTalker__SadTalker__WDA_AlexandriaOcasioCortez_000.mp4", 1),
                                         ("ai-forever__ghost__dance.mp4", 1)])
def test_a_clip_s_first_frames_are_no_cut_candidates(name, frame):
    """Their second frame jumps (an encoder settling: 6.6 and 16.5 times the floor, no cut by looking); with no
    motion of the clip's own to compare with yet, the change reads 0 until ``min_history`` changes are known."""
    path = shared_path(f"data/videos/talking/{name}")
    det, early = ShotCutDetector(), ShotCutDetector(min_history=0)
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            img = f.to_ndarray(format="bgr24")
            (cut, change), (_, raw) = det.observe(img), early.observe(img)
            if i == frame:
                assert not cut and change == 0.0 and raw >= 5.0, raw
                break


def steps_of(path, **kwargs):
    """The frames of ``path`` that are steps (``was_step`` after the next frame), and each frame's change."""
    det, changes, steps = ShotCutDetector(**kwargs), [], []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            changes.append(det.observe(f.to_ndarray(format="bgr24"))[1])
            if i and det.was_step():
                steps.append(i - 1)
    return steps, changes


def test_a_same_scene_jump_cut_under_cut_change_is_a_step_and_head_motion_is_not(tmp_path):
    """feifeili_clip1 with its middle cut out (frame 120 on, by construction): same set, person and light; the jump
    changes the picture 4.6 times the clip's own motion, under ``sources.cut_change`` (5), and the clip runs on
    quietly after it. Nothing else in either the joined clip or the whole clip is a step."""
    from streamfiqa.eval.videocases import make_jump
    from streamfiqa.eval.videoset import read_video_set

    shared_path("data/videos/talking/MANIFEST.tsv")
    (clip,) = [c for c in read_video_set() if c.name == "FuxiVirtualHuman__styletalk__feifeili_clip1.mp4"]
    case = make_jump(clip, tmp_path)
    steps, changes = steps_of(case.path)
    assert case.cuts == (120,) and steps == [120] and changes[120] < 5.0
    assert steps_of(clip.path)[0] == []
    assert steps_of(case.path, step=0)[0] == []  # 0: steps are not looked for


def test_an_inset_changes_the_picture_where_it_is_not_on_the_face_beside_it():
    """Real frames of andrew_clip_1, one with a block of another frame pasted into its bottom-right corner (as a news
    programme's inset): the picture's change jumps, the face's own region changes no more than talking does (the
    median over its box), the inset's region a lot. A face that did not change at all (the same frame again) reads
    less change than talking makes, however much the inset beside it changed the picture's brightness and contrast.
    A box too narrow to say, or no previous frame, gives NaN."""
    from streamfiqa.detect import create_detector
    from streamfiqa.io.shots import region_change

    path = shared_path("data/videos/talking/FuxiVirtualHuman__styletalk__andrew_clip_1.mp4")
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="bgr24") for _, f in zip(range(200), c.decode(video=0))]
    h, w = frames[100].shape[:2]

    def inset(frame, fill):
        out = frame.copy()
        out[h * 2 // 3:, w * 2 // 3:] = fill
        return out

    (face,) = create_detector("retinaface").detect(frames[100]).boxes[:1]
    corner = np.array([w * 2 // 3, h * 2 // 3, w, h], np.float32)
    tiny = np.array([0, 0, 2 * w / 64, 2 * h / 64], np.float32)  # two thumbnail pixels wide
    det, faces, pictures = ShotCutDetector(), [], []
    det.observe(frames[90])
    assert np.isnan(region_change(det.thumbs, face[None], (h, w))).all()  # the first frame: no change known
    for f in frames[91:101]:  # ordinary frames: him talking (some repeat the one before: a frame-rate conversion)
        det.observe(f)
        faces.append(float(region_change(det.thumbs, face[None], (h, w))[0]))
        pictures.append(float(np.abs(det.thumbs[1] - det.thumbs[0]).mean()))
    usual_face = max(float(np.quantile(faces, 0.9)), 0.02)  # as a track keeps it (Track.usual_change)
    det.observe(inset(frames[101], frames[0][:h - h * 2 // 3, :w - w * 2 // 3]))
    still, moved, small = region_change(det.thumbs, np.stack([face, corner, tiny]), (h, w))
    assert np.abs(det.thumbs[1] - det.thumbs[0]).mean() > 2 * max(pictures), pictures
    assert still < 2.5 * usual_face and moved > 5 * still and np.isnan(small), (still, usual_face, moved)
    det.observe(inset(frames[101], 0))  # the same frame, the inset gone black
    assert region_change(det.thumbs, face[None], (h, w))[0] < 0.5 * usual_face  # less than talking changes it
