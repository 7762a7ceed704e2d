"""Real clips of the development half (../shared/data/videos/talking; frames chosen by looking): tracks stop at
real cuts, closed eyes and a squeezed-eyes grimace are never published or enrolled, and a newcomer between
full-frame detections gets a track."""
import json

import numpy as np
import pytest

from conftest import damaged_copy, shared_path
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
    from streamfiqa.eval.videocases import excerpt

    clip = dev("bytedance__LatentSync__demo3_video")
    assert clip.cuts == (271,)
    clip = excerpt(clip, tmp_path, 191, 160)  # 80 frames either side (the whole clip: 600 frames, 4x the time)
    assert clip.cuts == (80,)
    at = 80 / clip.fps
    found = spans(run(clip.path, tmp_path / "out"))
    assert len(found) >= 2 and not [s for s in found if s[0] < at - 0.5 / clip.fps < s[1]]


def test_no_track_crosses_a_same_scene_jump_cut_found_as_a_step(dev, tmp_path):
    """feifeili_clip1 with its middle cut out: under ``sources.cut_change`` but a one-frame step (the source hands
    each frame on one late to know it); with steps off, one track runs across the jump."""
    from streamfiqa.eval.videocases import make_jump

    case = make_jump(dev("FuxiVirtualHuman__styletalk__feifeili_clip1"), tmp_path)
    at = case.cuts[0] / case.fps
    found = spans(run(case.path, tmp_path / "out"))
    assert len(found) == 2 and not [s for s in found if s[0] < at - 0.5 / case.fps < s[1]]
    assert [s for s in spans(run(case.path, tmp_path / "off", "sources.cut_step=0")) if s[0] < at < s[1]]


def test_no_track_crosses_the_join_of_two_real_clips_of_one_set(dev, tmp_path):
    """Two people filmed in the same studio, one clip after the other: the second must not inherit the first's
    track (its published crop would be the first person's)."""
    from streamfiqa.eval.videocases import make_join

    case = make_join(dev("FuxiVirtualHuman__styletalk__feifeili_clip1"),
                     dev("FuxiVirtualHuman__styletalk__andrew_clip_2"), tmp_path, seconds=3.0)
    at = case.cuts[0] / case.fps
    found = spans(run(case.path, tmp_path / "out"))
    assert len(found) == 2 and not [s for s in found if s[0] < at - 0.5 / case.fps < s[1]]


def test_a_face_part_inside_a_bigger_face_is_not_published(dev, tmp_path):
    """andrew_clip_1 pasted over feifeili_clip1's chin (256 px frames): RetinaFace also finds her nose and mouth as a
    small face (0.82-0.95) inside her box, beside the pasted face; as a track of its own it would be published, and
    the evaluation would count it as a track holding two people once the pasted face drifts under it."""
    from streamfiqa.eval.videocases import make_paste

    case = make_paste(dev("FuxiVirtualHuman__styletalk__feifeili_clip1"),
                      dev("FuxiVirtualHuman__styletalk__andrew_clip_1"), tmp_path)
    best = [e for e in run(case.path, tmp_path / "out") if e["event"] == "best"]
    who = sorted(case.person_of(e["frame_index"], np.asarray(e["box"])) for e in best)
    assert who == ["andrew", "feifeili"]
    assert len([e for e in run(case.path, tmp_path / "off", "selection.nested_share=0") if e["event"] == "best"]) == 3


def test_closed_eyes_never_win(dev, tmp_path):
    events = run(dev("FuxiVirtualHuman__styletalk__andrew_clip_1").path, tmp_path)
    (best,) = [e for e in events if e["event"] == "best"]
    picked = [best["frame_index"], *(c["frame_index"] for c in best["candidates"])]
    assert not set(picked) & set(CLOSED_EYES), picked
    # the eyes and mouth of the leading faces are named components of the event (the face mesh's measures)
    assert best["quality"]["components"]["eyes_open"] >= 0.2 and best["quality"]["components"]["face_presence"] > 0.9
    assert all(c["eyes_open"] >= 0.2 and 0 <= c["mouth_open"] < 1 for c in best["candidates"])


def test_shut_eyes_never_lead_an_open_eyed_face(dev, tmp_path):
    """andrew_clip_1's long blink alone, frames 19-34 (by looking: 21, 24-27 and 29-31 shut, the rest half or fully
    open), as a clip of its own: half of its faces have their eyes shut."""
    from streamfiqa.eval.videocases import excerpt

    path = excerpt(dev("FuxiVirtualHuman__styletalk__andrew_clip_1"), tmp_path, 19, 16).path
    shut = {21 - 19, *range(24 - 19, 28 - 19), *range(29 - 19, 32 - 19)}
    for overrides, rule in ((["selection.eyes_closed=0", "selection.eyes_weight=0"], False), ([], True)):
        out = tmp_path / ("on" if rule else "off")
        (best,) = [e for e in run(path, out, *overrides) if e["event"] == "best"]
        finalists = [c["frame_index"] for c in best["candidates"]]
        if not rule:  # the clip is hard: typicality alone lets shut eyes into the finalists
            assert set(finalists) & shut, finalists
        else:  # the best has its eyes open, and no shut-eyes finalist comes before an open one
            assert best["frame_index"] not in shut and best["quality"]["components"]["eyes_open"] >= 0.2
            flags = [f in shut for f in finalists]
            assert flags == sorted(flags), finalists


def test_a_grimace_with_squeezed_eyes_is_never_published(dev, tmp_path):
    """M003 disgusted: frames 102-106 (by looking) are a grimace, the eyes squeezed shut and the teeth bared; the
    clip has neutral open-eyed frames (0, 20-24, 32-35, 60-72). Neither the best nor a finalist is the grimace."""
    events = run(dev("filby89__spectre__M003_level_1_disgusted_015").path, tmp_path)
    (best,) = [e for e in events if e["event"] == "best"]
    picked = [best["frame_index"], *(c["frame_index"] for c in best["candidates"])]
    assert not set(picked) & set(range(102, 107)), picked
    assert min(c["eyes_open"] for c in best["candidates"]) >= 0.2


def test_enrolment_refuses_shut_eyes(dev, tmp_path):
    """The same blink as a cooperative subject's first seconds: the crop enrolled has its eyes open, and the shut
    ones it passed over are counted."""
    from streamfiqa.eval.videocases import excerpt
    from pipelines import enroll

    path = excerpt(dev("FuxiVirtualHuman__styletalk__andrew_clip_1"), tmp_path, 19, 16).path
    cfg = load_config(overrides=[f"output.dir={tmp_path / 'out'}", "stats_interval_s=0", "enroll.count=1",
                                 "enroll.threshold=0.2", "enroll.timeout_s=5", "publish.endpoint=null"],
                      base=enroll.DEFAULTS)
    assert enroll.run([str(path)], cfg) == 0
    events = [json.loads(line) for line in (tmp_path / "out" / "events.jsonl").read_text().splitlines()]
    (got,) = [e for e in events if e["event"] == "enrolled"]
    assert got["quality"]["components"]["eyes_open"] >= 0.2 and got["refused"]["eyes_shut"] >= 1


def test_an_inset_appearing_beside_a_presenter_whose_face_stays_still_is_no_cut(dev, tmp_path):
    """andrew_clip_1 with another person's clip inset at 0.35 of its height from 2 s (frame 60) on, as
    ``bench.inserts`` builds them: the picture changes at once (a cut candidate) and his face's embedding moves
    (cosine 0.76 to the frame before, under the face rule's 0.9), but his face's own pixels changed no more than they
    usually do: no cut (the summary counts it held), one track and one crop for him across the insert. With that look
    at the pixels off (``sources.cut_face_still=0``) the inset ended his track, as it did before."""
    from streamfiqa.eval.videocases import make_paste

    host = dev("FuxiVirtualHuman__styletalk__andrew_clip_1")
    case = make_paste(host, dev("ali-vilab__dreamtalk__M030_front_surprised_level3_001"), tmp_path, seconds=5.0,
                      share=0.35, enter_s=2.0)
    assert min(case.paste) == 60
    light = ["selection.second_look=null", "quality.face_measures=false", "quality.heavy=null"]

    def his_crops(out, *overrides):
        events = run(case.path, out, *light, *overrides)
        summary = json.loads((out / "manifest.json").read_text())
        mine = [e for e in events if e["event"] == "best"
                and case.person_of(e["frame_index"], np.asarray(e["box"])) == host.person]
        return mine, summary

    mine, summary = his_crops(tmp_path / "on")
    assert len(mine) == 1 and mine[0]["track"]["first_pts"] < 55 / host.fps < 65 / host.fps < mine[0]["track"]["last_pts"]
    assert summary["cuts"] == 0 and summary["cuts_held"] >= 1, summary
    mine, summary = his_crops(tmp_path / "off", "sources.cut_face_still=0")
    assert len(mine) == 2 and summary["cuts"] >= 1, summary


def test_a_newcomer_between_full_frames_gets_a_track_within_full_every_frames(dev, tmp_path):
    """andrew_clip_1 pasted into reagan_clip1 from frame 7 on, between the full frames of ``detector.full_every`` 5
    (0, 5, 10, …): a face found on a full frame must become a track within ``full_every`` frames. Issue #17 measured
    a close-up profile found on every full frame that never became a track: its tentative track did not survive the
    windowed frames between. Candidate cuts are off here: the inset's sudden entrance is one, and a candidate is
    detected in full, which would find him at once (a newcomer walking in changes the picture less)."""
    from streamfiqa.eval.tracking import track_clip
    from streamfiqa.eval.videocases import make_paste

    enter, host = 7, dev("FuxiVirtualHuman__styletalk__reagan_clip1")
    case = make_paste(host, dev("FuxiVirtualHuman__styletalk__andrew_clip_1"), tmp_path, seconds=3.0,
                      enter_s=enter / host.fps)
    assert min(case.paste) == enter
    rows, events = track_clip(str(case.path), ["detector.full_every=5", "quality.heavy=null", "sources.cut_change=1e9",
                                               "sources.cut_step=0"], offline.DEFAULTS)
    first = {}
    for i, faces in enumerate(rows):
        for tid, *box in faces:
            first.setdefault(case.person_of(i, np.asarray(box)), i)
    assert set(first) == {host.person, "andrew"}
    assert 10 <= first["andrew"] <= 10 + 5, first  # found on the full frame 10, a track by frame 15 (here 12)
    best = [e for e in events if e["event"] == "best"]
    assert sorted(case.person_of(e["frame_index"], np.asarray(e["box"])) for e in best) \
        == sorted(["andrew", host.person])


def test_a_face_cut_by_the_frame_edge_never_beats_the_whole_faces(dev, tmp_path):
    """andrew_clip_1's first 80 frames with every other frame moved right until a fifth of his face is past the
    frame's edge (a camera's edge as he leans out of it): recognisers match such a face worse (development clips:
    about 0.03 lower cosine to the person at 1-6 % of the face cut off, 0.06 at 10-15 %), though the fast score
    barely sees it; half the track is cut, so its cut faces are as typical of it as the whole ones. Without the
    ``min_in_frame`` gate a cut face is published."""
    import cv2

    from conftest import clip_frames, write_clip
    from streamfiqa.detect import create_detector

    frames = clip_frames(dev("FuxiVirtualHuman__styletalk__andrew_clip_1").path, 80)
    faces = create_detector("retinaface").detect(frames[0])
    x1, _, x2, _ = faces.boxes[int(np.argmax(faces.sizes))][:4]
    h, w = frames[0].shape[:2]
    move = np.float32([[1, 0, w - x2 + 0.2 * (x2 - x1)], [0, 1, 0]])
    path = tmp_path / "edge.mp4"
    write_clip(path, [cv2.warpAffine(f, move, (w, h), borderMode=cv2.BORDER_REPLICATE) if k % 2 == 0 else f
                      for k, f in enumerate(frames)])
    (best,) = [e for e in run(path, tmp_path / "on") if e["event"] == "best"]
    assert best["quality"]["components"]["in_frame"] == 1.0 and best["frame_index"] % 2 == 1
    assert all(c["frame_index"] % 2 == 1 for c in best["candidates"])
    (off,) = [e for e in run(path, tmp_path / "off", "quality.min_in_frame=0") if e["event"] == "best"]
    assert off["frame_index"] % 2 == 0 and off["quality"]["components"]["in_frame"] < 0.9



def test_a_face_from_a_damaged_stretch_is_published_only_as_failing_its_gate(dev, tmp_path):
    """LivePortrait s18 with 6 runs of 200 bytes zeroed: its one keyframe is among them, so every frame decodes from
    a damaged stretch (its face smeared in places: 6.5 grey levels from the clean clip's at the frame published
    before). The track is still published, but as failing the ``damaged`` gate, and the frames are counted."""
    clip = dev("KwaiVGI__LivePortrait__s18")
    damaged = damaged_copy(clip.path, tmp_path / "damaged.mp4", runs=6, seed=1)
    (best,) = [e for e in run(damaged, tmp_path / "out") if e["event"] == "best"]
    assert best["quality"]["gates_passed"] is False and best["quality"]["failed_gates"] == ["damaged"]
    (stats,) = json.loads((tmp_path / "out" / "manifest.json").read_text())["sources"].values()
    assert stats["frames_damaged"] == stats["decoded"] == 282
