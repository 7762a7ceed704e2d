"""Real clips of the development half (../shared/data/videos/talking; frames chosen by looking): tracks stop at
real cuts, closed eyes are never published, and a newcomer between full-frame detections gets a track."""
import json

import numpy as np
import pytest

from conftest import shared_path
from streamfiqa.config import load_config
from pipelines import offline

# andrew_clip_1, eyes closed (blinks), found by looking at every frame of 0-319 (30 fps)
CLOSED_EYES = [*range(20, 32), *range(49, 53), *range(84, 88), *range(124, 127), *range(196, 200), *range(306, 309)]


@pytest.fixture(scope="module")
def dev():
    shared_path("data/videos/talking/MANIFEST.tsv")
    from streamfiqa.eval.videoset import read_video_set

    clips = {c.name: c for c in read_video_set().half("dev")}
    return lambda stem: clips[f"{stem}.mp4"]


def run(path, out, *overrides):
    cfg = load_config(overrides=[f"output.dir={out}", "stats_interval_s=0", *overrides], base=offline.DEFAULTS)
    assert offline.run([str(path)], cfg) == 0
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def spans(events):
    return [(e["track"]["first_pts"], e["track"]["last_pts"]) for e in events if e["event"] == "best"]


def test_no_track_crosses_a_real_jump_cut(dev, tmp_path):
    """demo3: the same framing before and after frame 271, the hands and the head jump."""
    clip = dev("bytedance__LatentSync__demo3_video")
    assert clip.cuts == (271,)
    at = 271 / clip.fps
    found = spans(run(clip.path, tmp_path))
    assert len(found) >= 2 and not [s for s in found if s[0] < at - 0.5 / clip.fps < s[1]]


def test_no_track_crosses_the_join_of_two_real_clips_of_one_set(dev, tmp_path):
    """Two people filmed in the same studio, one clip after the other: the second must not inherit the first's
    track (its published crop would be the first person's)."""
    from streamfiqa.eval.videocases import make_join

    case = make_join(dev("FuxiVirtualHuman__styletalk__feifeili_clip1"),
                     dev("FuxiVirtualHuman__styletalk__andrew_clip_2"), tmp_path, seconds=3.0)
    at = case.cuts[0] / case.fps
    found = spans(run(case.path, tmp_path / "out"))
    assert len(found) == 2 and not [s for s in found if s[0] < at - 0.5 / case.fps < s[1]]


def test_closed_eyes_never_win(dev, tmp_path):
    events = run(dev("FuxiVirtualHuman__styletalk__andrew_clip_1").path, tmp_path)
    (best,) = [e for e in events if e["event"] == "best"]
    picked = [best["frame_index"], *(c["frame_index"] for c in best["candidates"])]
    assert not set(picked) & set(CLOSED_EYES), picked


def test_a_newcomer_between_full_frames_gets_a_track(dev, tmp_path):
    """A second person walks into the corner at 1 s, far from the tracked face: with full-frame detection every 5th
    frame only, they must become a track within 5 frames of their first full frame, and be published."""
    from streamfiqa.eval.videocases import make_paste

    case = make_paste(dev("FuxiVirtualHuman__styletalk__andrew_clip_2"),
                      dev("FuxiVirtualHuman__styletalk__feifeili_clip3"), tmp_path, seconds=4.0, enter_s=1.0)
    enter = min(case.paste)
    events = [e for e in run(case.path, tmp_path / "out", "detector.full_every=5") if e["event"] == "best"]
    people = {case.person_of(e["frame_index"], np.asarray(e["box"])): e for e in events}
    assert set(people) == {case.person, "feifeili"}
    first_full = -(-enter // 5) * 5
    assert people["feifeili"]["track"]["first_pts"] <= (first_full + 5) / case.fps + 1e-3
