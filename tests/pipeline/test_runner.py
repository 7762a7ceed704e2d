"""The offline journey end to end on real video: synthetic clips of real faces, and the crowd clip."""
import itertools
import json

import numpy as np
import pytest

from conftest import shared_path
from streamfiqa.config import load_config
from pipelines import offline


def run_offline(sources, out, *overrides):
    cfg = load_config(overrides=[f"output.dir={out}", "stats_interval_s=0", *overrides], base=offline.DEFAULTS)
    code = offline.run([str(s) for s in sources], cfg)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    return code, events


def test_known_sharp_frame_of_each_track_is_published_as_best(synth_clip, tmp_path):
    path, truth = synth_clip
    code, events = run_offline([path], tmp_path)
    assert code == 0
    best = [e for e in events if e["event"] == "best"]
    assert len(best) == 3
    for e in best:
        centre = np.add(e["box"][:2], e["box"][2:]) / 2
        f = e["frame_index"]
        face = int(np.argmin([np.linalg.norm(centre - (b[:2] + b[2:]) / 2) for b in truth.boxes[f]]))
        assert f == truth.sharp_frame[face], f"track {e['track_id']} picked frame {f}"
        assert (tmp_path / e["files"]["display"]).is_file() and (tmp_path / e["files"]["aligned"]).is_file()
    assert sorted(truth.sharp_frame) == sorted(e["frame_index"] for e in best)
    assert (tmp_path / "contact_sheet.png").is_file()


def test_a_photo_folder_s_events_name_the_photo_each_face_is_in(group_photo, tmp_path):
    """An image folder's events gave only a frame index: which photo a crop came from was left to guess."""
    import cv2

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "group.jpg"), group_photo)
    cv2.imwrite(str(photos / "mirrored.png"), group_photo[:, ::-1])
    code, events = run_offline([photos], tmp_path / "out")
    assert code == 0
    best = [e for e in events if e["event"] == "best"]
    assert {e["image"] for e in best} == {"group.jpg", "mirrored.png"}
    assert all(e["image"] == ("group.jpg", "mirrored.png")[e["frame_index"]] for e in best)
    assert all(c["image"] in ("group.jpg", "mirrored.png") for e in best for c in e["candidates"])


def test_a_photo_given_as_a_file_publishes_its_faces(group_photo, tmp_path):
    """A photo named on its own was read as a one-frame video, so every face's track ended unconfirmed (min_hits 3)
    and nothing was published, exit 0; it is a photo, as one in a folder is."""
    import cv2

    cv2.imwrite(str(tmp_path / "group.jpg"), group_photo)
    code, events = run_offline([tmp_path / "group.jpg"], tmp_path / "out")
    assert code == 0 and len([e for e in events if e["event"] == "best"]) >= 4


def test_a_clip_too_short_for_any_track_says_why_nothing_was_published(group_photo, tmp_path, caplog):
    from conftest import write_clip

    clip = write_clip(tmp_path / "two.mp4", [group_photo[:480, :640]] * 2)  # two frames: under min_hits
    with caplog.at_level("WARNING", logger="streamfiqa.pipeline.stats"):
        cfg = load_config(overrides=[f"output.dir={tmp_path / 'out'}", "stats_interval_s=0"], base=offline.DEFAULTS)
        assert offline.run([str(clip)], cfg) == 0
    assert "every one of the" in caplog.text and "tracker.min_hits" in caplog.text
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["warning"] == "faces found, every track unconfirmed (tracker.min_hits)"


def test_region_detection_publishes_the_same_sharp_frames(synth_clip, tmp_path):
    path, truth = synth_clip
    code, events = run_offline([path], tmp_path, "detector.full_every=4", "quality.scorer_args.precision=int8")
    assert code == 0
    assert sorted(e["frame_index"] for e in events) == sorted(truth.sharp_frame)


def test_detection_thread_gives_the_same_events(synth_clip, tmp_path):
    path, _ = synth_clip
    _, plain = run_offline([path], tmp_path / "a", "quality.heavy=null")
    code, staged = run_offline([path, path], tmp_path / "b", "quality.heavy=null", "detector.thread=true")
    assert code == 0
    key = lambda e: (e["track_id"], e["frame_index"], e["quality"]["score"])  # noqa: E731
    assert sorted(map(key, plain)) == sorted(map(key, [e for e in staged if e["source"] == "synth"]))
    assert len(staged) == 2 * len(plain)


def test_a_phone_clip_on_its_side_publishes_the_same_sharp_frames(phone_clip, synth_clip, tmp_path):
    """Stored on its side with a display rotation, as phones store portrait video: the frames are turned upright
    first (without that no face reaches the tracker's score: no event, exit 0), and the stats say so."""
    _, truth = synth_clip
    code, events = run_offline([phone_clip[0]], tmp_path)
    assert code == 0 and sorted(e["frame_index"] for e in events) == sorted(truth.sharp_frame)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["sources"]["phone"]["rotation"] == 270, manifest["sources"]


def test_last_tracks_of_a_file_are_flushed_at_eof(synth_clip, tmp_path):
    path, _ = synth_clip
    # All three faces are visible in the last frame: only the EOF flush can report them.
    _, events = run_offline([path], tmp_path)
    assert sorted(e["track"]["end_reason"] for e in events) == ["eof", "eof", "eof"]
    assert all(e["track"]["last_pts"] >= 39 / 25 - 1e-3 for e in events)


def test_a_broken_source_does_not_take_the_others_down(synth_clip, tmp_path):
    path, _ = synth_clip
    bad = tmp_path / "broken.mkv"
    bad.write_bytes(b"garbage" * 100)
    # ranked by the quality scores, the heavy tier's keyframes must reach the second source's tracks
    code, events = run_offline([bad, path], tmp_path / "out", "selection.rank=fast", "quality.heavy=fiqa_heavy")
    assert code == 1
    assert {e["source"] for e in events} == {"synth"} and len(events) == 3
    assert all(e["quality"]["tier"] == "heavy" for e in events)


def _observed_run(sources, out, *overrides, stop=None):
    """The offline pipeline on ``sources`` with its sinks; returns the exit code and the source of each frame
    processed, in order (``stop``: set by the observer after that many frames)."""
    import threading

    from streamfiqa.io.specs import parse_sources
    from streamfiqa.pipeline.build import build_runner, build_sinks

    cfg = load_config(overrides=[f"output.dir={out}", "stats_interval_s=0", *overrides], base=offline.DEFAULTS)
    runner = build_runner(cfg, parse_sources([str(s) for s in sources]), build_sinks(cfg))
    order, stopped = [], threading.Event()

    def observe(sid, *_):
        order.append(sid)
        if stop is not None and len(order) >= stop:
            stopped.set()

    runner.observers.append(observe)
    return runner.run(stopped), order


def test_files_wait_their_turn_and_publish_what_they_would_together(synth_clip, tmp_path):
    """A folder of many videos is not decoded all at once (each open file holds a decoder and a queue of frames:
    58 real clips at once took 12 GB): ``sources.max_open_files`` are read at a time, the others start as those end,
    and each file's events are the same as when all are read together."""
    path, _ = synth_clip
    key = lambda e: (e["source"], e["track_id"], e["frame_index"], e["quality"]["score"])  # noqa: E731
    _, together = run_offline([path] * 3, tmp_path / "a", "sources.max_open_files=0")
    code, order = _observed_run([path] * 3, tmp_path / "b", "sources.max_open_files=1")
    assert code == 0
    assert [sid for sid, _ in itertools.groupby(order)] == ["synth", "synth-2", "synth-3"]  # one after another
    turns = [json.loads(line) for line in (tmp_path / "b" / "events.jsonl").read_text().splitlines()]
    assert sorted(map(key, turns)) == sorted(map(key, together)) and len(together) == 9


def test_a_file_whose_turn_never_came_counts_its_frames_as_unread(synth_clip, tmp_path):
    path, _ = synth_clip
    code, order = _observed_run([path] * 2, tmp_path, "sources.max_open_files=1", stop=5)
    assert code == 0 and set(order) == {"synth"}
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["sources"]["synth-2"]["dropped"]["frames_unread_at_stop"] == 40  # the whole clip, from its header
    assert m["sources"]["synth-2"]["decoded"] == 0 and m["sources"]["synth-2"]["error"] is None
    assert m["frames_decoded"] + m["dropped"]["frames_unread_at_stop"] == 2 * 40  # every frame of both accounted for


@pytest.mark.parametrize("name, weights", [("mtcnn", None), ("scrfd", "models/scrfd/scrfd_500m_kps.onnx"),
                                           ("yunet", "models/yunet/face_detection_yunet_2023mar.onnx")])
def test_every_detector_publishes_the_crowd_clip_people(name, weights, tmp_path):
    """Each detector's scores mean something else: its own score scale must still make tracks (once: 0 events).
    What happens at a track's end (the face mesh's measures, FaceNet's second look) is the same whatever the detector,
    and is left out here (a third of each run; the same tracks published with or without it)."""
    clip = shared_path("data/videos/crowd_walk_1080p.mp4")
    extra = [f"detector.model_path={shared_path(weights)}"] if weights else []
    code, events = run_offline([clip], tmp_path, f"detector.name={name}", *extra, "quality.face_measures=false",
                               "selection.second_look=null")
    assert code == 0 and len([e for e in events if e["event"] == "best"]) >= 8


def run_enroll(clip, out, *overrides):
    from pipelines import enroll

    # the enroll defaults publish on 5556: not here (two tests at once would fight over the port)
    cfg = load_config(overrides=[f"output.dir={out}", "stats_interval_s=0", "publish.endpoint=null", *overrides],
                      base=enroll.DEFAULTS)
    code = enroll.run([str(clip)], cfg)
    return code, [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def test_enrollment_stops_once_enough_good_crops(synth_clip, tmp_path):
    path, _ = synth_clip
    # the generated faces' eyes are closer than the enroll default's 30 px (see the next test)
    code, events = run_enroll(path, tmp_path, "enroll.count=1", "enroll.threshold=0.25", "quality.min_inter_eye=12")
    enrolled = [e for e in events if e["event"] == "enrolled"]
    assert code == 0 and len(enrolled) == 1
    assert enrolled[0]["quality"]["score"] >= 0.25 and enrolled[0]["frame_index"] < 39


def test_enrollment_timeout_names_the_gate_that_refused_the_crops(synth_clip, tmp_path):
    """At the enroll defaults the generated faces score enough but their eyes are under 30 px apart: the timeout must
    say so, not only that nothing scored enough."""
    path, _ = synth_clip
    code, events = run_enroll(path, tmp_path, "enroll.count=1", "enroll.threshold=0.3")
    (timeout,) = [e for e in events if e["event"] == "enroll_timeout"]
    assert code == 3 and timeout["refused"]["gates"]["min_inter_eye"] >= 1
    assert "min_inter_eye" in timeout["message"]


def test_enrollment_holds_one_subject_and_labels_each_crop_with_its_track(tmp_path):
    """On the crowd clip the largest face changes hands: every enrolled crop must still be the one person."""
    import cv2

    from streamfiqa.models.fr import create_fr

    clip = shared_path("data/videos/crowd_walk_1080p.mp4")
    code, events = run_enroll(clip, tmp_path, "enroll.count=3", "enroll.threshold=0.3", "enroll.min_pose_delta=3")
    enrolled = [e for e in events if e["event"] == "enrolled"]
    assert code == 0 and len(enrolled) == 3
    crops = np.stack([cv2.imread(str(tmp_path / e["files"]["aligned"])) for e in enrolled])
    emb = create_fr("mobilefacenet", weights=str(shared_path("models/mobilefacenet/mobilefacenet_ms1m_arcface.pt")),
                    device="cpu").embed(crops)
    sims = emb @ emb.T
    assert sims[np.triu_indices(3, 1)].min() > 0.36  # MobileFaceNet's cosine at FMR 1e-3 (train half): one person
    frames = {e["frame_index"]: e["track_id"] for e in enrolled}
    assert all(isinstance(t, int) for t in frames.values())


def test_enrollment_times_out_with_a_clear_message(synth_clip, tmp_path):
    path, _ = synth_clip
    code, events = run_enroll(path, tmp_path, "enroll.count=3", "enroll.threshold=0.99", "enroll.timeout_s=1.0")
    (timeout,) = [e for e in events if e["event"] == "enroll_timeout"]
    assert code == 3 and "0/3" in timeout["message"] and "timed out" in timeout["message"]


def test_demo_clip_with_four_faces_publishes_every_sharp_frame(tmp_path):
    """The README's demo: each face is blurred or downscaled in every frame but one; that frame wins (the blurred
    copies are outside the quality band, however alike they are)."""
    from streamfiqa.eval.synth import make_clip

    truth = make_clip(tmp_path / "demo.mp4", faces=4, frames=100)
    code, events = run_offline([tmp_path / "demo.mp4"], tmp_path / "out")
    assert code == 0
    assert sorted(e["frame_index"] for e in events) == sorted(truth.sharp_frame)
    assert all(e["quality"]["tier"] == "track" and e["quality"]["decided_by"] == "typicality" for e in events)


@pytest.mark.parametrize("full_every", [1, 5])
def test_scene_with_crossings_exits_and_a_cut_one_track_per_person_per_shot(tmp_path, full_every):
    """The tracking test bed: real faces crossing, leaving and coming back, and a hard cut; detection on every
    full frame, and (full_every 5) through windows around the known faces between full frames."""
    from pipelines.offline import DEFAULTS
    from streamfiqa.eval.tracking import mot_metrics, track_clip
    from streamfiqa.eval.synth import make_scene

    truth = make_scene(tmp_path / "scene.mp4")
    rows, events = track_clip(str(tmp_path / "scene.mp4"), ["quality.heavy=null", f"detector.full_every={full_every}"],
                              DEFAULTS)
    m = mot_metrics(truth.frames, rows, shots=truth.shot_starts)
    assert m["id_switches"] == 0, m
    assert all(n == 1 for n in m["tracks_per_person_shot"].values()), m
    # every person of every shot has a best event whose crop is that person
    best = [e for e in events if e["event"] == "best"]
    seen = set()
    for e in best:
        f = e["frame_index"]
        for person, *box in truth.frames[f]:
            from streamfiqa.track.matching import iou_matrix

            if iou_matrix(np.array([box], np.float32), np.array([e["box"]], np.float32))[0, 0] > 0.5:
                seen.add((person, truth.shot_of(f)))
    expected = {(p, truth.shot_of(f)) for f, rows in enumerate(truth.frames) for p, *_ in rows}
    assert seen == expected
    assert any(e["track"]["end_reason"] == "cut" for e in best)


def test_metrics_endpoint_counters_move_during_a_run(synth_clip, tmp_path):
    """Scrape the Prometheus endpoint while a run is in progress and again at its end."""
    import threading
    import urllib.request

    pytest.importorskip("prometheus_client")
    from streamfiqa.pipeline.build import build_runner
    from streamfiqa.io.specs import parse_sources

    path, _ = synth_clip
    cfg = load_config(overrides=["stats_interval_s=0", "metrics.port=0", "quality.heavy=null", "detector.full_every=4"],
                      base=offline.DEFAULTS)
    runner = build_runner(cfg, parse_sources([str(path)]), [])
    assert runner.metrics.server.server_address[0] == "127.0.0.1"
    url = f"http://127.0.0.1:{runner.metrics.port}/metrics"
    scrapes = []
    runner.observers.append(lambda *a: len(scrapes) < 1 and a[1].frame.index == 20 and
                            scrapes.append(urllib.request.urlopen(url, timeout=5).read().decode()))
    done = threading.Thread(target=runner.run)
    done.start()
    done.join(300)
    assert scrapes, "scraped during the run"

    def value(text, name, having=""):
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and having in line)

    mid = scrapes[0]
    assert 0 < value(mid, "streamfiqa_frames_processed_total") < 40
    assert value(mid, "streamfiqa_stage_seconds_count") > 0
    final = runner.metrics.registry  # the server is closed after the run: collect directly
    from prometheus_client import generate_latest

    end = generate_latest(final).decode()
    assert value(end, "streamfiqa_frames_processed_total") == 40
    assert value(end, "streamfiqa_events_total", 'kind="best"') == 3
    # region detection: 1 frame in 4 in full, 3 faces a window each on the others
    assert value(end, "streamfiqa_detector_frames_total", 'mode="full"') == 10
    assert value(end, "streamfiqa_detector_frames_total", 'mode="windowed"') == 30
    assert value(end, "streamfiqa_detector_windows_total") == 90


def test_at_the_cctv_rate_a_walking_face_keeps_one_track(tmp_path):
    """The crowd clip read at cctv.yaml's 5 frames a second: the boy in the blue hood (box centre near x 950,
    y 740 from 0.6 s; by looking) walks towards the camera, and between two processed frames his face moves past the
    IoU gate. Before re-identification covered tracks seen on the frame before, his first 0.4 s were a track of
    their own and a second `best` of him."""
    from pipelines import cctv

    clip = shared_path("data/videos/crowd_walk_1080p.mp4")
    cfg = load_config(overrides=[f"output.dir={tmp_path}", "stats_interval_s=0", "publish.endpoint=null",
                                 "selection.emit_updates=false"], base=cctv.DEFAULTS)
    assert cctv.run([str(clip)], cfg) == 0
    best = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    him = [e for e in best if e["event"] == "best" and e["track"]["first_pts"] < 0.3
           and abs((e["box"][0] + e["box"][2]) / 2 - 950) < 60 and abs((e["box"][1] + e["box"][3]) / 2 - 715) < 60]
    assert len(him) == 1 and him[0]["track"]["last_pts"] > 3.5, [e["track"] for e in him]
