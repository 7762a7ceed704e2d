"""Cases made from real clips of the development half keep their truth inside the frame."""
import av
import numpy as np

from conftest import shared_path
from streamfiqa.eval.videocases import make_paste


def test_a_wide_clip_pasted_into_a_tall_one_fits_inside_the_frame(tmp_path):
    shared_path("data/videos/talking/MANIFEST.tsv")
    from streamfiqa.eval.videoset import read_video_set

    clips = {c.name: c for c in read_video_set().half("dev")}
    tall = clips["KwaiVGI__LivePortrait__s20.mp4"]  # 480 × 908
    wide = clips["KwaiVGI__LivePortrait__s32.mp4"]  # 1280 × 720
    case = make_paste(tall, wide, tmp_path, seconds=1.0)
    with av.open(str(case.path)) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    h, w = frames[0].shape[:2]
    assert (w, h) == (480, 908) and len(frames) == len(case.paste) >= 25
    x1, y1, x2, y2, who = case.paste[10]
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h and who == wide.person
    assert x2 - x1 == w // 2  # the inset's width capped at half the frame, its aspect kept
    assert abs((y2 - y1) / (x2 - x1) - 720 / 1280) < 0.01
    assert case.person_of(10, np.array([x1 + 5, y1 + 5, x2 - 5, y2 - 5])) == wide.person
    assert case.person_of(10, np.array([0, 0, 40, 40])) == tall.person
    # the main face half hidden by the inset, found as a box whose centre falls just inside it: still the main face
    assert case.person_of(10, np.array([x1 - 60, y1 - 60, x1 + 80, y1 + 80])) == tall.person
    # ... and as a box mostly inside it: the pasted person's face lies wholly inside the inset
    assert case.person_of(10, np.array([x1 - 20, y1 - 20, x1 + 100, y1 + 100])) == tall.person


def test_a_case_is_made_once_and_kept_the_same_for_every_run(tmp_path, monkeypatch):
    """x264 does not always encode the same frames to the same file; a case made afresh on every run moved the
    protocol's figures, so cases are kept in the model cache and a second run reuses the first run's file."""
    shared_path("data/videos/talking/MANIFEST.tsv")
    from streamfiqa.eval.videocases import case_folder
    from streamfiqa.eval.videoset import read_video_set

    monkeypatch.setenv("STREAMFIQA_CACHE", str(tmp_path / "cache"))
    clips = {c.name: c for c in read_video_set().half("dev")}
    pair = [clips["KwaiVGI__LivePortrait__s20.mp4"], clips["KwaiVGI__LivePortrait__s32.mp4"]]
    folder = case_folder(pair, "test")
    assert folder.is_dir() and folder.is_relative_to(tmp_path / "cache")
    first = make_paste(*pair, folder, seconds=1.0)
    made, stamp = first.path.read_bytes(), first.path.stat().st_mtime_ns
    again = make_paste(*pair, case_folder(pair, "test"), seconds=1.0)
    assert again.path == first.path and again.path.read_bytes() == made and again.path.stat().st_mtime_ns == stamp
    assert again.paste == first.paste and [p.name for p in folder.iterdir()] == [first.path.name]  # no part left
    assert case_folder(pair[:1], "test") != folder  # other clips, another folder
    longer = make_paste(*pair, folder, seconds=2.0)  # the same name made otherwise: made anew, not the 1-s file
    with av.open(str(longer.path)) as c:
        assert c.streams.video[0].frames == len(longer.paste) > len(first.paste)
