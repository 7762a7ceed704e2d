"""Faults a user or an attacker causes: every loss counted, clear exits, safe names, authenticated streams.

Real subprocesses of the CLI and real ZeroMQ sockets on 127.0.0.1.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from conftest import ROOT, free_port
from streamfiqa.config import PublishConfig, load_config
from streamfiqa.io.sinks import ZmqPublisher

CLI = [sys.executable, str(ROOT / "run_stream.py")]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _subscriber(endpoint, topic=b"face.", slow=False):
    """A SUB socket connected to ``endpoint``; ``slow``: it buffers next to nothing (ZeroMQ would otherwise read
    1,000 messages into the subscriber's memory), so a subscriber that does not read holds the publisher up."""
    sub = zmq.Context.instance().socket(zmq.SUB)
    if slow:
        sub.setsockopt(zmq.RCVHWM, 2)
        sub.setsockopt(zmq.RCVBUF, 4096)
    sub.setsockopt(zmq.SUBSCRIBE, topic)
    sub.connect(endpoint)
    return sub


def _event(i, big=False):
    from conftest import make_event as event

    e = event(i % 200)
    if big:  # ~0.5 MB of noise per crop: kernel socket buffers cannot hide a stalled subscriber
        e.candidate.display = np.random.default_rng(i).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    return e


def test_pub_counts_every_event_a_slow_subscriber_did_not_get():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub = ZmqPublisher(PublishConfig(endpoint=endpoint, hwm=2, queue_size=500, send_timeout_ms=20))
    sub = _subscriber(endpoint, slow=True)
    time.sleep(0.5)
    n = 300
    for i in range(n):
        pub.emit(_event(i, big=True))
    time.sleep(1.0)  # the subscriber reads nothing meanwhile
    received = 0
    while sub.poll(300):
        sub.recv_multipart()
        received += 1
    pub.close()
    sub.close(linger=0)
    assert pub.dropped > 0, "a PUB socket would have dropped these unseen"
    assert pub.sent + pub.dropped == n
    assert received <= pub.sent


def test_events_zeromq_still_holds_when_the_close_budget_runs_out_are_said(caplog):
    """A subscriber that never reads: what ZeroMQ still queues at close cannot be counted, so the run says so."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub = ZmqPublisher(PublishConfig(endpoint=endpoint, hwm=50, queue_size=500, send_timeout_ms=20))
    sub = _subscriber(endpoint, slow=True)
    time.sleep(0.5)
    for i in range(60):
        pub.emit(_event(i, big=True))
    time.sleep(1.0)
    with caplog.at_level("WARNING", logger="streamfiqa.io.sinks"):
        pub.close(timeout=0.5)
    sub.close(linger=0)
    assert pub.sent > 0 and not pub.close_complete
    assert "may not have reached a subscriber" in caplog.text


def test_a_subscriber_that_reads_gets_everything_and_close_is_complete():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub = ZmqPublisher(PublishConfig(endpoint=endpoint))
    sub = _subscriber(endpoint)
    time.sleep(0.5)
    for i in range(20):
        pub.emit(_event(i))
    got = 0
    while got < 20 and sub.poll(3000):
        sub.recv_multipart()
        got += 1
    pub.close()
    sub.close(linger=0)
    assert got == pub.sent == 20 and pub.close_complete


def test_push_with_no_peer_shuts_down_cleanly_on_sigterm(synth_clip, tmp_path):
    clip, _ = synth_clip
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    p = subprocess.Popen(CLI + [f"a={clip}", "--pipeline", "cctv", "--set", "sources.live=true",
                                "--publish", endpoint, "--set", "publish.socket=push",
                                "--set", "selection.min_dwell_s=0", "--set", "publish.send_timeout_ms=300"],
                         stderr=subprocess.PIPE, text=True, env=ENV)
    time.sleep(6)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err[-2000:]
    assert "Assertion" not in err


def _xpub(port):
    """A PUB socket that also reports its subscribers: tests wait for a subscription instead of sleeping."""
    pub = zmq.Context.instance().socket(zmq.XPUB)
    pub.setsockopt(zmq.XPUB_VERBOSE, 1)
    pub.bind(f"tcp://127.0.0.1:{port}")
    return pub


def _wait_subscribed(pub, timeout_s=60.0):
    """Block until a subscriber (re)subscribes; a slow CI machine may take many seconds to start the CLI."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pub.poll(200) and pub.recv()[:1] == b"\x01":
            time.sleep(0.2)  # the subscription reached the socket; let the listener settle into recv
            return
    raise AssertionError(f"no subscriber within {timeout_s} s")


def _listen_proc(endpoint, save, *extra):
    return subprocess.Popen(CLI + ["listen", endpoint, "--save", str(save), "--log-level", "warning", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def test_listen_skips_bad_messages_sanitises_names_and_exits_on_signals(tmp_path):
    port = free_port()
    pub = _xpub(port)
    save = tmp_path / "recv"
    p = _listen_proc(f"tcp://127.0.0.1:{port}", save)
    _wait_subscribed(pub)
    good = json.dumps({"schema": 1, "event": "best", "track_id": 1}).encode()
    evil = json.dumps({"schema": 1, "event": "best", "track_id": "../../../escaped"}).encode()
    for parts in ([b"face.best.cam", b"{not json", b"", b""], [b"face.best.cam", good, b""],
                  [b"face.best.cam", b"[1, 2]", b"", b""], [b"face.best.../../x", evil, b"jpg", b"png"],
                  [b"face.best.cam", good, b"jpg", b"png"]):
        pub.send_multipart(parts)
    time.sleep(1.5)
    pub.close(linger=0)  # the publisher ends: a normal end, no warning (it said a message over --max-bytes was lost)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert len(out.splitlines()) == 2 and "skipped 3 malformed" in err and "connection" not in err
    written = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert written and all(save in f.parents for f in written)
    assert not any(".." in f.name for f in written)


def test_listen_survives_deep_json_and_huge_messages_and_never_overwrites(tmp_path):
    """A 400 kB message of nested JSON is skipped and counted; a message over --max-bytes never reaches memory (its
    sender's connection is dropped, counted); a second run into the same folder keeps the first run's files."""
    save = tmp_path / "recv"
    good = json.dumps({"schema": 1, "event": "best", "track_id": 1}).encode()
    files = []
    for run in range(2):
        port = free_port()  # a fresh publisher per run: no subscription message of the last run is left queued
        pub = _xpub(port)
        p = _listen_proc(f"tcp://127.0.0.1:{port}", save, "--max-bytes", "1000000")
        _wait_subscribed(pub)
        pub.send_multipart([b"face.best.cam", b"[" * 200_000 + b"]" * 200_000, b"", b""])
        pub.send_multipart([b"face.best.cam", good, b"x" * 3_000_000, b"png"])  # over --max-bytes
        _wait_subscribed(pub)  # the subscriber reconnects after its connection was dropped
        pub.send_multipart([b"face.best.cam", good, b"jpg", b"png"])
        time.sleep(1.5)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
        assert p.returncode == 0, err
        assert len(out.splitlines()) == 1 and "skipped 1 malformed" in err and "connection dropped" in err
        files.append(sorted(f.name for f in (save / "crops").iterdir()))
        pub.close(linger=0)
    assert len(files[1]) == 2 * len(files[0]) == 4 and set(files[0]) < set(files[1])
    assert len((save / "events.jsonl").read_text().splitlines()) == 2


def test_listen_that_cannot_save_stops_with_one_line_and_exit_1(tmp_path):
    """A full disk under --save ended in '[Errno 28] No space left on device' and exit 2 (a user's mistake). Here
    the events file is /dev/full, where every write fails with ENOSPC as on a full disk."""
    save = tmp_path / "recv"
    save.mkdir()
    (save / "events.jsonl").symlink_to("/dev/full")
    port = free_port()
    pub = _xpub(port)
    p = _listen_proc(f"tcp://127.0.0.1:{port}", save)
    _wait_subscribed(pub)
    pub.send_multipart([b"face.best.cam", json.dumps({"schema": 1, "event": "best", "track_id": 1}).encode(), b"",
                        b""])
    _, err = p.communicate(timeout=30)
    pub.close(linger=0)
    assert p.returncode == 1 and "Traceback" not in err, err
    assert f"listen --save {save}: cannot write event 1 (No space left on device)" in err


def test_listen_says_when_the_curve_handshake_fails(tmp_path):
    from streamfiqa.io.curve import curve_server

    keys = tmp_path / "keys"
    assert subprocess.run(CLI + ["keys", str(keys)], capture_output=True, env=ENV).returncode == 0
    assert subprocess.run(CLI + ["keys", str(keys), "--name", "other"], capture_output=True, env=ENV).returncode == 0
    assert (keys / "streamfiqa.key_secret").stat().st_mode & 0o777 == 0o600  # written so, never readable by others
    again = subprocess.run(CLI + ["keys", str(keys)], capture_output=True, text=True, env=ENV)
    assert again.returncode == 2 and len(again.stderr.splitlines()) == 1 and "exists" in again.stderr
    into_file = subprocess.run(CLI + ["keys", str(keys / "streamfiqa.key")], capture_output=True, text=True, env=ENV)
    assert into_file.returncode == 2 and "expected a folder to write keys into" in into_file.stderr
    port = free_port()
    pub = zmq.Context.instance().socket(zmq.PUB)
    auth = curve_server(pub, str(keys / "streamfiqa.key_secret"), None)
    pub.bind(f"tcp://127.0.0.1:{port}")
    p = subprocess.run(CLI + ["listen", f"tcp://127.0.0.1:{port}", "--count", "1", "--timeout", "3",
                              "--curve-server-key", str(keys / "other.key")], capture_output=True, text=True,
                       timeout=60, env=ENV)
    pub.close(linger=0)
    auth.stop()
    assert p.returncode == 1 and "CURVE handshake" in p.stderr and "received 0 of the 1" in p.stderr, p.stderr


def test_listen_exits_on_sigint(tmp_path):
    p = _listen_proc(f"tcp://127.0.0.1:{free_port()}", tmp_path / "r")
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=20)
    assert p.returncode == 0


def _cli(*args, timeout=120):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout, env=ENV)


def _one_line_exit_2(p, *words):
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    for w in words:
        assert w in p.stderr, (w, p.stderr[-2000:])


def test_user_mistakes_exit_2_with_one_line(synth_clip, tmp_path):
    clip, _ = synth_clip
    rand = tmp_path / "model.pth"
    rand.write_bytes(np.random.default_rng(0).bytes(4096))
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    p = _cli(str(clip), "--set", "quality.scorer=student", "--set", f"quality.scorer_args={{weights: {rand}}}")
    _one_line_exit_2(p, "model.pth", "torch checkpoint")
    assert "weights_only=False" not in p.stderr
    _one_line_exit_2(_cli(str(clip), "--set", "quality.scorer=student", "--set",
                          f"quality.scorer_args={{weights: {empty}}}"), "empty")
    _one_line_exit_2(_cli(str(clip), "--set", "quality.scorer=nope"), "unknown scorer 'nope'", "fiqa_fast")
    _one_line_exit_2(_cli(str(clip), "--set", "quality.scorer_args={bogus: 1}"), "bogus")
    # refused before the sinks open: no output folder is left behind for a misnamed model
    _one_line_exit_2(_cli(str(clip), "--out", str(tmp_path / "o"), "--set", "quality.heavy=nope"), "unknown scorer")
    assert not (tmp_path / "o").exists()
    _one_line_exit_2(_cli(str(clip), "--out", str(tmp_path / "o"), "--set", "tracker.appearance=nope"),
                     "tracker.appearance 'nope'", "valid names")
    assert not (tmp_path / "o").exists()
    # YAML reads {jitter:4} as one key 'jitter:4': said so
    _one_line_exit_2(_cli(str(clip), "--set", "quality.scorer_args={jitter:4}"), "a space after the colon")
    _one_line_exit_2(_cli(str(clip), "--publish", "tcp://nowhere:x"), "publish.endpoint")
    busy = zmq.Context.instance().socket(zmq.PUB)
    port = free_port()
    busy.bind(f"tcp://127.0.0.1:{port}")
    try:
        _one_line_exit_2(_cli(str(clip), "--publish", f"tcp://127.0.0.1:{port}"), "bind")
    finally:
        busy.close(linger=0)
    afile = tmp_path / "afile"
    afile.write_text("x")
    _one_line_exit_2(_cli(str(clip), "--out", str(afile)), "found a file")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("tracker:\n  max_age: [1, 2\n")
    _one_line_exit_2(_cli(str(clip), "--config", str(bad_yaml)), "YAML syntax error")
    _one_line_exit_2(_cli(str(tmp_path / "missing.mp4"), "--pipeline", "offline"), "missing.mp4")
    _one_line_exit_2(_cli(str(tmp_path / "missing.mp4"), "--config", str(ROOT / "configs" / "offline.yaml")),
                     "missing.mp4")
    _one_line_exit_2(_cli(str(clip), "--publish", "tcp://0.0.0.0:5999"), "CURVE")
    # connecting out sends crops beyond the host just the same (refused before any connection is made)
    _one_line_exit_2(_cli(str(clip), "--publish", "tcp://192.0.2.1:5999", "--set", "publish.bind=false"), "CURVE")


@pytest.mark.parametrize("override, message", [
    ("sources.queue_size=0", ">= 1"), ("detector.max_side=-1", ">= 0"), ("publish.hwm=-1", ">= 0"),
    ("selection.top_k=0", ">= 1"), ("quality.fast_every=0", ">= 1"), ("tracker.max_age=-5", ">= 0"),
    ("detector.min_face=-20", ">= 1"), ("publish.jpeg_quality=-5", "<= 100"),
    ("tracker.high_thresh=.nan", "finite"), ("tracker.low_thresh=2", "<= 1")])
def test_values_are_range_checked_with_the_range_in_the_message(override, message):
    from streamfiqa.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_yaml_booleans_are_accepted_for_word_keys():
    cfg = load_config(None, ["progress=false", "sources.live=true", "sources.shot_cuts=false"])
    assert (cfg.progress, cfg.sources.live, cfg.sources.shot_cuts) == ("false", "true", "false")


def test_a_missing_source_among_good_ones_fails_alone(synth_clip, tmp_path):
    clip, _ = synth_clip
    p = _cli(str(clip), str(tmp_path / "gone.mp4"), "--out", str(tmp_path / "o"), "--set", "quality.heavy=null",
             timeout=300)
    assert p.returncode == 1, p.stderr[-2000:]
    events = [json.loads(x) for x in (tmp_path / "o" / "events.jsonl").read_text().splitlines()]
    assert {e["source"] for e in events} == {"synth"} and len(events) >= 3
    assert "gone" in p.stderr


def test_a_cameras_password_never_reaches_the_logs_or_the_manifest(tmp_path):
    """FFmpeg's connection errors quote the URL, and a camera's URL holds its password (or a stream's token)."""
    port = free_port()  # nothing listens: every connection is refused
    p = _cli(f"door=rtsp://admin:s3cret@127.0.0.1:{port}/stream1", f"hall=http://127.0.0.1:{port}/live.m3u8?token=t0ken",
             "--out", str(tmp_path), "--set", "sources.max_reconnects=1", "--set", "sources.reconnect_initial_s=0.05",
             "--set", "stats_interval_s=0")
    assert p.returncode == 1 and "Connection refused" in p.stderr, p.stderr[-2000:]
    assert "admin:***@127.0.0.1" in p.stderr and "token=***" in p.stderr
    manifest = (tmp_path / "manifest.json").read_text()
    for secret in ("s3cret", "t0ken"):
        assert secret not in p.stderr and secret not in manifest


def test_a_corrupted_middle_is_skipped_and_the_clean_end_is_read(tmp_path):
    import av

    from streamfiqa.config import SourcesConfig
    from streamfiqa.io.sources import Source
    from streamfiqa.io.specs import parse_sources
    from streamfiqa.eval.synth import make_clip

    clip = tmp_path / "c.mp4"
    make_clip(clip, faces=1, frames=60, crf=30, gop=10)
    data = bytearray(clip.read_bytes())
    rng = np.random.default_rng(1)
    mid = len(data) // 2
    data[mid:mid + 3000] = rng.bytes(3000)
    (tmp_path / "bad.mp4").write_bytes(bytes(data))
    with av.open(str(clip)) as c:
        total = sum(1 for _ in c.decode(video=0))
    src = Source(parse_sources([str(tmp_path / "bad.mp4")], "false")[0], SourcesConfig()).start()
    frames = []
    while not src.finished:
        f = src.read()
        if f is None:
            time.sleep(0.01)
            continue
        frames.append(f.index)
    src.close()
    assert len(frames) > 0.7 * total and max(frames) >= total - 3
    assert src.error is None
    assert src.decoded + src.frames_lost == total  # every frame is read or counted as lost


def test_frames_a_damaged_file_loses_are_counted(tmp_path):
    """A fifth of a file overwritten in five stretches: what does not decode is counted, the rest is read."""
    from streamfiqa.config import SourcesConfig
    from streamfiqa.eval.synth import make_clip
    from streamfiqa.io.sources import Source
    from streamfiqa.io.specs import parse_sources

    clip = tmp_path / "c.mp4"
    make_clip(clip, faces=1, frames=100, crf=30, gop=10)
    data, rng = bytearray(clip.read_bytes()), np.random.default_rng(1)
    for _ in range(5):
        at = int(rng.integers(len(data) // 10, len(data) - 5000))
        data[at:at + len(data) // 25] = rng.bytes(len(data) // 25)
    (tmp_path / "bad.mp4").write_bytes(bytes(data))
    src = Source(parse_sources([str(tmp_path / "bad.mp4")], "false")[0], SourcesConfig()).start()
    while not src.finished:
        if src.read() is None:
            time.sleep(0.01)
    src.close()
    assert src.error is None and src.decode_errors > 0 and src.frames_lost > 0
    assert src.decoded + src.frames_lost == 100


def test_runs_never_mix(synth_clip, tmp_path):
    clip, _ = synth_clip
    out = tmp_path / "o"
    assert _cli(str(clip), "--out", str(out), "--set", "quality.heavy=null", timeout=300).returncode == 0
    _one_line_exit_2(_cli(str(clip), "--out", str(out)), "runs never mix")
    again = _cli(str(clip), "--out", str(out), "--set", "quality.heavy=null", "--set", "output.overwrite=true",
                 timeout=300)
    assert again.returncode == 0
    assert len((out / "events.jsonl").read_text().splitlines()) == 3
    assert json.loads((out / "manifest.json").read_text())["events_by_kind"] == {"best": 3}


def test_one_writer_per_folder_and_a_run_without_events_blocks_nothing(synth_clip, tmp_path):
    from streamfiqa.config import OutputConfig
    from streamfiqa.io.sinks import FileSink

    first = FileSink(OutputConfig(dir=str(tmp_path / "o")))
    with pytest.raises(ValueError, match="another run is writing there"):
        FileSink(OutputConfig(dir=str(tmp_path / "o"), overwrite=True))  # an OS lock, not a file check
    first.close()
    assert not (tmp_path / "o" / "events.jsonl").exists()  # it wrote no event
    (tmp_path / "a_file").write_text("")
    with pytest.raises(OSError, match="output.dir .*a_file/o: expected a directory this user can create"):
        FileSink(OutputConfig(dir=str(tmp_path / "a_file" / "o")))  # (the CLI: exit 2 with this line)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    assert _cli(str(broken), "--out", str(tmp_path / "p")).returncode in (1, 2)
    clip, _ = synth_clip
    assert _cli(str(clip), "--out", str(tmp_path / "p"), "--set", "quality.heavy=null", timeout=300).returncode == 0


def test_curve_keys_encrypt_and_authenticate_the_stream(tmp_path):
    p = _cli("keys", str(tmp_path / "server"))
    assert p.returncode == 0, p.stderr
    keys = json.loads(p.stdout)
    assert oct(Path(keys["secret"]).stat().st_mode)[-3:] == "600"
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    pub = ZmqPublisher(PublishConfig(endpoint=endpoint, curve_secret_key=keys["secret"]))
    listener = subprocess.Popen(CLI + ["listen", endpoint, "--curve-server-key", keys["public"], "--count", "2",
                                       "--timeout", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=ENV)
    plain = _subscriber(endpoint, topic=b"")
    time.sleep(2.0)
    for i in range(2):
        pub.emit(_event(i))
    out, err = listener.communicate(timeout=30)
    assert listener.returncode == 0, err
    assert len(out.splitlines()) == 2
    assert not plain.poll(500), "a subscriber without the server key must get nothing"
    plain.close(linger=0)
    pub.close()


def test_a_signal_while_the_models_load_stops_cleanly(synth_clip):
    """SIGTERM while the run is being built (models loading): exit 0 with the shutdown said, not killed by the signal."""
    clip, _ = synth_clip
    p = subprocess.Popen(CLI + [f"a={clip}", "--pipeline", "cctv", "--set", "sources.live=true",
                                "--publish", f"tcp://127.0.0.1:{free_port()}"], stderr=subprocess.PIPE, text=True,
                         env=ENV)
    head = ""
    while "publishing on" not in head:  # the sinks are built before the models: they are loading now
        line = p.stderr.readline()
        assert line, head
        head += line
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    err = head + err
    assert p.returncode == 0, err[-2000:]
    assert "received SIGTERM" in err and "Traceback" not in err


def test_a_file_in_which_no_face_is_found_says_so_with_the_settings_that_hide_faces(synth_clip):
    """A detector scaled too far down (detector.max_side 10) found nothing in a clip full of faces: exit 0 and a
    summary of '0 faces' at INFO. It still exits 0 (a file without faces is valid input) and now warns."""
    p = _cli(str(synth_clip[0]), "--set", "detector.max_side=10", "--set", "publish.endpoint=null")
    assert p.returncode == 0 and "Traceback" not in p.stderr
    assert "no face found in any of its" in p.stderr and "detector.max_side 10" in p.stderr
