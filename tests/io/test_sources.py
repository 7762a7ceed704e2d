import json
import logging
import threading
import time

import av
import cv2
import numpy as np
import pytest

from conftest import clip_frames, damaged_copy, write_clip
from streamfiqa.config import SourcesConfig
from streamfiqa.io.sources import Source, to_bgr
from streamfiqa.io.specs import parse_sources


def drain(src, limit_s=30, until=None):
    """Every frame ``src`` delivers until it finishes, ``limit_s`` pass or ``until(frames)`` holds; then closes it."""
    frames, t0 = [], time.monotonic()
    while not src.finished and time.monotonic() - t0 < limit_s and not (until and until(frames)):
        f = src.read()
        if f is None:
            src.wake.wait(0.05)
            src.wake.clear()
        else:
            frames.append(f)
    src.close()
    return frames


def test_file_source_reads_every_frame_with_stream_timestamps(synth_clip):
    path, _ = synth_clip
    (spec,) = parse_sources([str(path)])
    assert spec.kind == "file" and not spec.live and spec.id == "synth"
    frames = drain(Source(spec, SourcesConfig(queue_size=2)).start())
    assert len(frames) == 40
    np.testing.assert_allclose([f.pts for f in frames], np.arange(40) / 25, atol=1e-3)


def test_to_bgr_matches_libswscale_on_real_video(synth_clip):
    import av

    path, _ = synth_clip
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
    assert frame.format.name == "yuv420p"
    ours, ref = to_bgr(frame), frame.to_ndarray(format="bgr24")
    assert ours.shape == ref.shape and ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - ref).mean() < 2.0
    rgb = frame.reformat(format="rgb24")  # anything not 4:2:0 goes through libswscale as before
    np.testing.assert_array_equal(to_bgr(rgb), rgb.to_ndarray(format="bgr24"))


def test_a_phone_clip_on_its_side_is_turned_upright_as_its_display_matrix_says(phone_clip):
    path, upright = phone_clip
    (spec,) = parse_sources([str(path)])
    src = Source(spec, SourcesConfig())
    frames = drain(src.start())
    assert len(frames) == len(upright) and src.turned == 270  # −90: a quarter turn clockwise
    assert all(np.abs(f.image.astype(int) - u).mean() < 3 for f, u in zip(frames, upright))
    stored = drain(Source(spec, SourcesConfig(autorotate=False)).start())  # as stored: on its side
    assert stored[0].image.shape == (upright[0].shape[1], upright[0].shape[0], 3)


def test_frames_of_wide_pixels_are_stretched_to_square_ones(synth_clip, tmp_path):
    """Stored at half width with pixels twice as wide as tall (a DVR's D1 or HDV does the same at 12:11 and 4:3)."""
    from fractions import Fraction

    upright = clip_frames(synth_clip[0], 8)
    h, w = upright[0].shape[:2]
    squeezed = [cv2.resize(f, (w // 2, h), interpolation=cv2.INTER_AREA) for f in upright]
    path = write_clip(tmp_path / "wide.mp4", squeezed, {"crf": "12"}, sample_aspect=Fraction(2, 1))
    (spec,) = parse_sources([str(path)])
    src = Source(spec, SourcesConfig())
    frames = drain(src.start())
    assert len(frames) == 8 and src.sample_aspect == 2.0 and frames[0].image.shape == (h, w, 3)
    assert np.abs(frames[4].image.astype(int) - upright[4]).mean() < 4  # half the columns were lost, not the shape
    stored = drain(Source(spec, SourcesConfig(square_pixels=False)).start())
    assert stored[0].image.shape == (h, w // 2, 3)


def test_interlaced_frames_are_said_and_counted(synth_clip, tmp_path, caplog):
    # as an analogue camera's encoder or a TV recording writes them
    path = write_clip(tmp_path / "interlaced.mp4", clip_frames(synth_clip[0], 6), {"x264-params": "interlaced=1:tff=1"})
    (spec,) = parse_sources([str(path)])
    src = Source(spec, SourcesConfig())
    with caplog.at_level("WARNING", logger="streamfiqa.io.sources"):
        assert len(drain(src.start())) == 6
    assert src.interlaced and "interlaced" in caplog.text
    (spec,) = parse_sources([str(synth_clip[0])])
    src = Source(spec, SourcesConfig())
    drain(src.start())
    assert not src.interlaced


def test_a_clock_that_goes_back_mid_file_is_timed_on_and_counted(synth_clip, tmp_path, caplog):
    """Two MPEG-TS recordings joined end to end (``cat a.ts b.ts``, as DVR exports are): the second one's clock starts
    again. Its frames follow the first one's at the frame rate instead of going back in time, and that is said. (Each
    recording runs longer than the second within which frames out of order are put back in order: a DVR export runs
    minutes.)"""
    frames = clip_frames(synth_clip[0])  # 40 frames, 1.6 s
    a = write_clip(tmp_path / "a.ts", frames, container="mpegts")
    b = write_clip(tmp_path / "b.ts", frames[::-1], container="mpegts")
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    (spec,) = parse_sources([str(joined)])
    src = Source(spec, SourcesConfig())
    with caplog.at_level("WARNING", logger="streamfiqa.io.sources"):
        pts = [f.pts for f in drain(src.start())]
    assert len(pts) == 80 and src.timestamps_repaired == 1 and "go back or repeat" in caplog.text
    np.testing.assert_allclose(np.diff(pts), 1 / 25, atol=1e-3)  # one clock, one frame apart throughout
    src = Source(parse_sources([str(synth_clip[0])])[0], SourcesConfig())
    drain(src.start())
    assert src.timestamps_repaired == 0


def test_a_damaged_recording_keeps_its_frames_in_order_and_its_own_timeline(tmp_path, monkeypatch):
    """A real talking-head clip (andrew_clip_1, 25 s at 30 fps) with 40 runs of 200 bytes zeroed, as a damaged
    recording: after a broken reference its decoder pairs frames with the wrong times (the pictures in order, the
    times shuffled). The frames stay in the order decoded, and the clip reads as long as it is; taken as they came
    (each frame behind the last timed a frame after it), it read 44 s."""
    from conftest import shared_path
    from streamfiqa.io import sources

    clean = shared_path("data/videos/talking/FuxiVirtualHuman__styletalk__andrew_clip_1.mp4")
    damaged = damaged_copy(clean, tmp_path / "damaged.mp4", runs=40, seed=0)

    def read(path):
        src = Source(parse_sources([str(path)])[0], SourcesConfig(decode_threads=1))  # as offline.yaml decodes
        frames = drain(src.start())
        pts = [f.pts for f in frames]
        assert np.all(np.diff(pts) > 0)
        return pts[-1] - pts[0], src, [cv2.resize(f.image, (32, 32)).astype(np.float32) for f in frames]

    truth, _, _ = read(clean)
    span, src, pictures = read(damaged)
    assert src.decode_errors > 0 and src.timestamps_reordered > 50, (src.decode_errors, src.timestamps_reordered)
    assert abs(span - truth) < 0.02 * truth and src.timestamps_repaired < 10, (span, truth, src.timestamps_repaired)
    decoded = []  # the same file decoded plainly: the order its decoder hands the pictures out in
    with av.open(str(damaged)) as c:
        c.streams.video[0].thread_type = "NONE"
        for packet in c.demux(c.streams.video[0]):
            try:
                decoded += [cv2.resize(to_bgr(f), (32, 32)).astype(np.float32)
                            for f in packet.decode()]
            except av.error.InvalidDataError:
                pass
    assert len(decoded) == len(pictures)
    assert all(np.array_equal(a, b) for a, b in zip(decoded, pictures))
    monkeypatch.setattr(sources, "REORDER_WINDOW", 0)  # as before: each frame with the time it came with
    stretched, before, _ = read(damaged)
    assert stretched > 1.3 * truth and before.timestamps_repaired > 100, (stretched, before.timestamps_repaired)


def test_frames_decoded_from_a_damaged_stretch_are_marked_until_a_whole_keyframe(tmp_path):
    """andrew_clip_1 (H.264, keyframes every ~250 frames) with 4 runs of 200 bytes zeroed: every frame whose picture
    differs visibly from the clean clip's at the same time (any 16-px block off by more than 20 grey levels on
    average) is marked ``damaged``, frames before the first damage are not, and a keyframe that decodes whole ends
    the marking."""
    from conftest import shared_path

    clean = shared_path("data/videos/talking/FuxiVirtualHuman__styletalk__andrew_clip_1.mp4")
    damaged = damaged_copy(clean, tmp_path / "damaged.mp4", runs=4, seed=0)

    def read(path):
        src = Source(parse_sources([str(path)])[0], SourcesConfig(decode_threads=1))
        return drain(src.start()), src

    whole, plain = read(clean)
    assert plain.frames_damaged == 0 and not any(f.damaged for f in whole)
    truth = {round(f.pts, 3): f.image for f in whole}
    frames, src = read(damaged)
    marked = np.array([f.damaged for f in frames])
    visible = []
    for f in frames:
        diff = np.abs(f.image.astype(np.int16) - truth[round(f.pts, 3)]).max(axis=2)
        h, w = (s - s % 16 for s in diff.shape)
        visible.append(bool((diff[:h, :w].reshape(h // 16, 16, w // 16, 16).mean(axis=(1, 3)) > 20).any()))
    visible = np.array(visible)
    assert visible.sum() > 100 and not (visible & ~marked).any(), np.flatnonzero(visible & ~marked)
    assert src.frames_damaged == marked.sum() < 0.6 * len(frames)
    assert np.flatnonzero(marked)[0] > 100
    assert (marked[:-1] & ~marked[1:]).any()  # a keyframe that decoded whole ended a damaged stretch


def test_a_cover_track_before_the_video_is_not_what_is_read(synth_clip, tmp_path, caplog):
    """An MKV whose first video track is a one-frame 64-px MJPEG cover (as tagging tools write them): the clip is read,
    not the cover, and the choice is logged."""
    frames = clip_frames(synth_clip[0], 10)
    path = tmp_path / "cover_first.mkv"
    with av.open(str(path), "w") as c:
        cover = c.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 64, 64, "yuvj420p"
        video = c.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        c.mux(cover.encode(av.VideoFrame.from_ndarray(frames[0][:64, :64].copy(), format="bgr24")))
        c.mux(cover.encode())
        for f in frames:
            c.mux(video.encode(av.VideoFrame.from_ndarray(f, format="bgr24")))
        c.mux(video.encode())
    (spec,) = parse_sources([str(path)])
    with caplog.at_level("WARNING", logger="streamfiqa.io.sources"):
        got = drain(Source(spec, SourcesConfig()).start())
    assert len(got) == 10 and got[0].image.shape == frames[0].shape
    assert "2 video streams" in caplog.text and "reading the largest, #1" in caplog.text


def test_file_resumes_at_start_s_and_replays_in_real_time(synth_clip):
    import dataclasses

    path, _ = synth_clip
    (spec,) = parse_sources([str(path)])
    frames = drain(Source(dataclasses.replace(spec, start_s=0.8), SourcesConfig()).start())
    assert len(frames) == 20 and abs(frames[0].pts - 0.8) < 1e-3  # seeks to the keyframe before, then skips
    t0 = time.monotonic()
    frames = drain(Source(spec, SourcesConfig(realtime=True)).start())
    assert len(frames) == 40 and time.monotonic() - t0 >= 39 / 25 - 0.05  # frames arrive at the clip's rate


def test_stride_and_max_fps(synth_clip):
    path, _ = synth_clip
    (spec,) = parse_sources([str(path)])
    assert [f.index for f in drain(Source(spec, SourcesConfig(stride=4)).start())] == list(range(0, 40, 4))
    frames = drain(Source(spec, SourcesConfig(max_fps=5)).start())
    assert len(frames) == 8 and np.all(np.diff([f.pts for f in frames]) >= 0.2 - 1e-6)
    # 10 a second from 25: on a 0.1 s grid (0, .12, .2, .32 …), not 0.1 s after each kept frame (8.3 a second)
    frames = drain(Source(spec, SourcesConfig(max_fps=10)).start())
    assert len(frames) == 16 and np.all(np.diff([f.pts for f in frames]) <= 0.12 + 1e-6)


def test_live_source_drops_the_oldest_frames_when_behind(synth_clip, caplog):
    """A file read as live without ``sources.realtime`` floods: its oldest frames are dropped, counted, and it is
    opened again at its end; the log says so when it starts (a user who set only ``live`` meant a camera)."""
    path, _ = synth_clip
    (spec,) = parse_sources([str(path)], live="true")
    with caplog.at_level(logging.WARNING, logger="streamfiqa.io.sources"):
        src = Source(spec, SourcesConfig(queue_size=2, max_reconnects=1, reconnect_initial_s=0.01)).start()
    assert "sources.realtime=true" in caplog.text
    time.sleep(1.5)  # do not read: the decoder runs ahead
    frames = drain(src)
    assert src.dropped > 0 and src.reconnects == 1
    assert len(frames) <= 4 and frames[-1].pts > frames[0].pts


def test_a_stopped_live_source_decodes_nothing_more_and_counts_no_drop(synth_clip):
    """While a run's open tracks are flushed at shutdown nobody reads: frames decoded then would read as drops."""
    path, _ = synth_clip
    (spec,) = parse_sources([str(path)], live="true")
    src = Source(spec, SourcesConfig(queue_size=2, realtime=True)).start()
    while src.read() is None:
        time.sleep(0.01)
    src.stop()
    decoded, dropped = src.decoded, src.dropped
    time.sleep(0.5)  # 12 frames of the clip's time, unread
    assert src.decoded <= decoded + 1 and src.dropped == dropped == 0
    src.close()


def test_a_file_stopped_before_its_end_counts_the_rest_as_unread_not_lost(synth_clip):
    """A run stopped mid-file (Ctrl-C, SIGTERM): the frames not reached were never tried, so they are not "could not
    be decoded"; they are counted as unread."""
    path, _ = synth_clip
    (spec,) = parse_sources([str(path)])
    src = Source(spec, SourcesConfig(queue_size=2, realtime=True)).start()
    while src.read() is None:
        time.sleep(0.01)
    src.stop()
    src.close()
    assert src.frames_lost == 0 and 0 < src.unread == 40 - src.decoded


def test_folder_source_skips_unreadable_images(tmp_path, group_photo, caplog):
    cv2.imwrite(str(tmp_path / "a.jpg"), group_photo)
    (tmp_path / "b.jpg").write_bytes(b"not an image")
    cv2.imwrite(str(tmp_path / "c.png"), group_photo[:200, :200])
    (tmp_path / "later").mkdir()  # a sub-folder beside the photos is not read, and that is said
    cv2.imwrite(str(tmp_path / "later" / "d.jpg"), group_photo)
    (spec,) = parse_sources([f"stills={tmp_path}"])
    assert spec.kind == "folder" and spec.id == "stills"
    src = Source(spec, SourcesConfig())
    with caplog.at_level("WARNING", logger="streamfiqa.io.sources"):
        frames = drain(src.start())
    assert [f.index for f in frames] == [0, 2]
    assert [f.name for f in frames] == ["a.jpg", "c.png"]  # each photo says which file it is (events carry it)
    assert "1 sub-folder(s) not read (later)" in caplog.text
    # counted as a frame that could not be decoded, not as one decoded and left unprocessed when the run ended
    assert src.frames_lost == 1 and src.decoded == 2


def test_parse_sources_ids_and_errors(tmp_path):
    specs = parse_sources(["cam1=rtsp://127.0.0.1:8554/x?a=b", "rtsp://127.0.0.1/y", "/dev/video0"])
    assert [(s.id, s.kind, s.live) for s in specs] == [
        ("cam1", "rtsp", True), ("rtsp1", "rtsp", True), ("video0", "webcam", True)]
    assert specs[0].uri == "rtsp://127.0.0.1:8554/x?a=b"
    with pytest.raises(FileNotFoundError, match="expected a video file"):
        parse_sources([str(tmp_path / "missing.mp4")])
    (tmp_path / "photos" / "alice").mkdir(parents=True)
    with pytest.raises(ValueError, match="subfolder.*alice, are not looked into"):
        parse_sources([str(tmp_path / "photos")])  # a folder of folders: say where the pictures may be
    # two sources without a name that would share one: the second is told apart
    assert [s.id for s in parse_sources(["/dev/video0", "/dev/video0"])] == ["video0", "video0-2"]
    # one name given to two sources is a mistake (copied command lines), whatever strict says; the password stays out
    with pytest.raises(ValueError, match=r"'door'.* given to rtsp://admin:\*\*\*@10.0.0.5/a and to rtsp://10.0.0.6/b"):
        parse_sources(["door=rtsp://admin:pw@10.0.0.5/a", "door=rtsp://10.0.0.6/b"], strict=False)


def test_other_stream_urls_are_live_streams_and_an_unknown_scheme_is_named(tmp_path):
    specs = parse_sources(["udp://239.0.0.1:1234", "hall=rtmp://10.0.0.5/live/hall", "srt://10.0.0.6:9000"])
    assert [(s.id, s.kind, s.live) for s in specs] == [
        ("udp0", "stream", True), ("hall", "stream", True), ("srt2", "stream", True)]
    # a file manager's copy of a path is that path
    clip = tmp_path / "my clip.mp4"
    write_clip(clip, [np.zeros((64, 64, 3), np.uint8)] * 3)
    (spec,) = parse_sources([clip.as_uri()])
    assert (spec.uri, spec.kind, spec.id) == (str(clip), "file", "my clip".replace(" ", "_"))
    # a scheme streamfiqa does not read is named as such, not "nothing at that path"; the password stays out
    with pytest.raises(FileNotFoundError, match=r"'ftp://u:\*\*\*@nas/a.mp4'.*found the scheme ftp://"):
        parse_sources(["ftp://u:pw@nas/a.mp4"])
    # SRT's secret is its passphrase
    assert parse_sources(["srt://h:9000?mode=caller&passphrase=s3cret"])[0].shown == \
        "srt://h:9000?mode=caller&passphrase=***"


def test_an_mpeg_ts_stream_over_udp_is_read_live_after_a_timeout_that_says_so(synth_clip, tmp_path, caplog):
    """MPEG-TS over UDP on 127.0.0.1 (as an encoder sends it): the source waits, says in plain words that nothing came
    within the network timeout (FFmpeg calls it "Immediate exit requested"), reconnects, and reads the stream once
    the sender starts; an FFmpeg without the URL's protocol fails the source at once instead of reconnecting."""
    import socket
    import subprocess
    import sys

    from conftest import ROOT

    # 80 frames (3.2 s) with a keyframe every 10, as a camera's encoder sends them: a receiver that joins late (its
    # open timed out while the first datagrams flew) decodes from the next keyframe
    path = tmp_path / "camera.mp4"
    write_clip(path, clip_frames(synth_clip[0]) * 2, {"g": "10", "keyint_min": "10"})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (spec,) = parse_sources([f"udp://127.0.0.1:{port}"])
    cfg = SourcesConfig(open_timeout_s=1.0, read_timeout_s=1.0, reconnect_initial_s=0.1, reconnect_max_s=0.2)
    with caplog.at_level(logging.WARNING, logger="streamfiqa.io.sources"):
        src = Source(spec, cfg).start()
        time.sleep(1.5)  # one open has timed out
        pusher = subprocess.Popen([sys.executable, str(ROOT / "tests" / "rtsp_push.py"), str(path),
                                   f"udp://127.0.0.1:{port}"], stderr=subprocess.PIPE, text=True)
        t0 = time.monotonic()  # read until the sender is done and its last datagrams are in
        frames = drain(src, 30, until=lambda got: pusher.poll() is not None and got and time.monotonic() - t0 > 5)
        _, err = pusher.communicate(timeout=30)
    assert pusher.returncode == 0, err[-2000:]
    assert "nothing received within the network timeout" in caplog.text and "Immediate exit" not in caplog.text
    assert len(frames) >= 60, len(frames)
    assert frames[0].image.shape[:2] == clip_frames(path, 1)[0].shape[:2]  # 80 sent
    assert all(b.pts > a.pts for a, b in zip(frames, frames[1:]))
    if "srt" not in _protocols_tried():
        (srt,) = parse_sources(["srt://127.0.0.1:9"])
        src = Source(srt, cfg).start()
        assert drain(src, limit_s=10) == [] and "without that protocol" in src.error and src.reconnects == 0


def _protocols_tried() -> set[str]:
    """Protocols this FFmpeg has, of those the test asks about (PyAV's wheels have no srt)."""
    try:
        av.open("srt://127.0.0.1:9", timeout=0.5).close()
    except av.error.ProtocolNotFoundError:
        return set()
    except Exception:  # noqa: BLE001 - it has srt, and no one listens
        pass
    return {"srt"}


def test_broken_file_reports_an_error_without_raising(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(ValueError, match="cannot"):
        parse_sources([str(bad)])  # strict: the CLI says so before any source starts
    (spec,) = parse_sources([str(bad)], strict=False)  # one bad source among others fails on its own
    src = Source(spec, SourcesConfig(), threading.Event()).start()
    assert drain(src) == [] and src.error


def test_a_vod_hls_playlist_ends_like_a_file(tmp_path):
    """An HLS playlist with its end (#EXT-X-ENDLIST) served over HTTP on 127.0.0.1 is read once and the run ends,
    where a live stream would be reconnected forever; read at the pipeline's pace, it has no lag (it read -3 s); with
    ``--set sources.live=false`` it runs the offline journey, every frame, as a file would."""
    import functools
    import http.server
    import socketserver
    import subprocess
    import sys
    import threading

    from conftest import ROOT
    from streamfiqa.eval.synth import make_clip

    make_clip(tmp_path / "clip.mp4", faces=2, frames=50)
    hls = tmp_path / "hls"
    hls.mkdir()
    with av.open(str(tmp_path / "clip.mp4")) as src:
        out = av.open(str(hls / "index.m3u8"), "w", format="hls", options={"hls_time": "1", "hls_playlist_type": "vod"})
        o = out.add_stream_from_template(src.streams.video[0])
        for pkt in src.demux(src.streams.video[0]):
            if pkt.dts is not None:
                pkt.stream = o
                out.mux(pkt)
        out.close()
    assert (hls / "index.m3u8").read_text().rstrip().endswith("#EXT-X-ENDLIST")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = socketserver.TCPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(hls)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.m3u8"
        p = subprocess.run([sys.executable, str(ROOT / "run_stream.py"), url, "--out", str(tmp_path / "out"),
                            "--set", "publish.endpoint=null", "--set", "quality.heavy=null"],
                           capture_output=True, text=True, timeout=120)
        as_file = subprocess.run([sys.executable, str(ROOT / "run_stream.py"), url, "--out", str(tmp_path / "file"),
                                  "--set", "sources.live=false"], capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    assert p.returncode == 0, p.stderr[-2000:]
    assert "reconnecting" not in p.stderr and "finished" in p.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["frames_decoded"] == 50 and manifest["events_by_kind"].get("best", 0) >= 1
    assert "lag 0.00 s" in p.stderr and "lag -" not in p.stderr
    assert as_file.returncode == 0, as_file.stderr[-2000:]
    manifest = json.loads((tmp_path / "file" / "manifest.json").read_text())
    assert manifest["frames_processed"] == 50  # the offline journey: every frame, not cctv's 5 a second
