"""Scale-out on Ray: a local cluster of a head and a second node, two live sources over two workers; one
worker's process is killed mid-stream, and every track of both sources still ends with a ``best`` event."""
import os
import signal
import threading
import time

import pytest

ray = pytest.importorskip("ray", reason="needs ray (pip install 'streamfiqa[ray]')")


class Collect:
    def __init__(self):
        self.events, self.closed = [], False

    def emit(self, event):
        self.events.append((time.time(), event))

    def close(self):
        self.closed = True


@pytest.fixture()
def cluster():
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    ray.init(address=c.address, include_dashboard=False, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


def test_killed_worker_resumes_elsewhere_and_every_track_ends_with_best(tmp_path, cluster):
    from pipelines import cctv
    from streamfiqa.config import load_config
    from streamfiqa.cluster.fleet import Fleet
    from streamfiqa.eval.synth import make_scene

    shot = [[(0, (0.10, 0.30), (0.25, 0.30), 0, 199), (1, (0.60, 0.35), (0.50, 0.30), 0, 199)]]
    clips = []
    for k in range(2):
        clips.append(tmp_path / f"cam{k + 1}.mp4")
        make_scene(clips[-1], shot, frames_per_shot=200, size=(640, 360), face_side=110, seed=k)
    cfg = load_config(None, ["sources.live=true", "sources.realtime=true", "detector.max_side=640",
                             "quality.heavy=null", "fleet.workers=2", "fleet.checkpoint_s=0.5",
                             "fleet.poll_timeout_s=20", "stats_interval_s=0", 'progress="false"', "metrics.port=0"],
                      base=cctv.DEFAULTS)
    out = Collect()
    fleet = Fleet(cfg, [f"cam{k + 1}={c}" for k, c in enumerate(clips)], sinks=[out])
    seen: dict[str, set] = {"cam1": set(), "cam2": set()}
    handle = fleet._handle

    def record(items):  # every track the fan-in ever heard of
        for kind, payload in items:
            if kind == "checkpoint":
                seen[payload[0]] |= {e.track_id for e in payload[2]}
            elif kind == "event" and payload.track_id is not None:
                seen[payload.source_id].add(payload.track_id)
        handle(items)

    fleet._handle = record
    codes = []
    stop = threading.Event()
    thread = threading.Thread(target=lambda: codes.append(fleet.run(stop)), daemon=True)
    thread.start()
    t0 = time.time()
    while time.time() - t0 < 60 and not all(fleet.sources[s].open for s in ("cam1", "cam2")):
        time.sleep(0.2)  # both cameras have confirmed tracks at the fan-in
    assert all(fleet.sources[s].open for s in ("cam1", "cam2")), "no tracks within 60 s"
    import re
    import urllib.request

    def scrape() -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{fleet.metrics.port}/metrics", timeout=10).read().decode()

    def processed(text: str, sid: str) -> float:
        return float(re.search(rf'streamfiqa_frames_processed_total{{source="{sid}"}} (\S+)', text).group(1))

    before = scrape()  # the fan-in serves the whole fleet's counters
    assert processed(before, "cam1") > 0 and processed(before, "cam2") > 0
    assert "streamfiqa_fleet_restarts_total 0.0" in before
    victim = fleet.sources["cam1"].worker
    other = fleet.sources["cam2"].worker
    assert victim != other, "two sources, two workers"
    pid = ray.get(fleet.workers[victim].pid.remote())
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    # cameras do not end (a live file loops like one): the operator stops the fleet once cam1 runs again
    def resumed() -> bool:
        lost = [e.track_id for _, e in list(out.events) if e.track.get("end_reason") == "worker_lost"]
        return bool(lost) and any(e.source_id == "cam1" and (e.track_id or 0) > max(lost) for _, e in list(out.events))

    while time.time() - killed_at < 60 and not resumed():
        time.sleep(0.2)
    time.sleep(2)
    after = scrape()
    assert "streamfiqa_fleet_restarts_total 1.0" in after
    assert processed(after, "cam1") > processed(before, "cam1")  # counted on across the two workers
    stop.set()
    thread.join(120)
    assert not thread.is_alive() and out.closed

    assert fleet.stats["restarts"] == 1 and fleet.stats["worker_lost_tracks"] >= 1
    assert fleet.stats["gap_frames"] > 0  # live: the frames of the gap are lost, and counted
    bests = [e for _, e in out.events if e.kind == "best"]
    for sid in ("cam1", "cam2"):
        ended = {e.track_id for e in bests if e.source_id == sid}
        assert seen[sid] and seen[sid] <= ended, f"{sid}: tracks without a best event: {seen[sid] - ended}"
        ids = [e.track_id for e in bests if e.source_id == sid]
        assert len(ids) == len(set(ids)), f"{sid}: one best per track"
    lost = [e for e in bests if e.track.get("end_reason") == "worker_lost"]
    assert lost and all(e.source_id == "cam1" for e in lost)
    # cam1 carried on on the replacement worker, with new track ids above the old ones
    later = [e for t, e in out.events if e.source_id == "cam1" and t > killed_at and e.track_id is not None
             and e.track.get("end_reason") != "worker_lost"]
    assert later and min(e.track_id for e in later) > max(e.track_id for e in lost)
    assert codes == [0]


def test_fleet_cli_refuses_bad_input_before_starting_ray(tmp_path, synth_clip):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "streamfiqa.cli", str(tmp_path / "missing.mp4"), "--workers", "2"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "missing.mp4" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "streamfiqa.cli", str(tmp_path), "--workers", "-1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "fleet.workers" in proc.stderr and "Traceback" not in proc.stderr
    # a scorer named without the weights it needs was a worker's traceback and exit 1
    proc = subprocess.run([sys.executable, "-m", "streamfiqa.cli", str(synth_clip[0]), "--workers", "1", "--set",
                           "quality.heavy=diffiqa"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "scorer 'diffiqa'" in proc.stderr and "Traceback" not in proc.stderr


def test_a_model_no_worker_can_build_is_one_line_and_exit_2(synth_clip):
    """A detector without its model file is found only when a worker builds its stages, on Ray: it was the
    worker's traceback and exit 1."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "streamfiqa.cli", str(synth_clip[0]), "--workers", "1", "--set",
                           "detector.name=yunet", "--set", "publish.endpoint=null"], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "yunet: expected detector.model_path to name a YuNet .onnx file" in proc.stderr


def test_a_fleet_stopped_by_sigterm_flushes_without_a_crash_report(tmp_path, synth_clip):
    """Ray's failure signal handler printed "*** SIGTERM received at time=… PC: @ 0x…" for a normal stop, as if the
    run had crashed; a stopped fleet run now says only what the CLI says, and its open track is published."""
    import json
    import subprocess
    import sys

    from streamfiqa.eval.synth import make_clip

    clip = tmp_path / "long.mp4"
    make_clip(clip, faces=1, frames=400)  # 16 s in real time: open when the signal comes
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"}
    p = subprocess.Popen([sys.executable, "-m", "streamfiqa.cli", f"cam={clip}", "--pipeline", "cctv", "--workers", "1",
                          "--set", "sources.live=true", "--set", "sources.realtime=true", "--set",
                          "selection.min_dwell_s=0", "--set", "publish.endpoint=null", "--out", str(out)],
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 90
        events = out / "events.jsonl"
        while time.monotonic() < deadline and not (events.exists() and '"update"' in events.read_text()):
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err[-2000:]
    assert "SIGTERM received at time" not in err and "Traceback" not in err
    ends = [e["track"]["end_reason"] for e in map(json.loads, events.read_text().splitlines()) if e["event"] == "best"]
    assert ends == ["shutdown"]
    # the run's summary, added up from its worker's (a fleet run wrote none)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["events_by_kind"]["best"] == 1 and manifest["sources"]["cam"]["processed"] > 0
    assert manifest["fleet"]["workers"] == 1 and manifest["frames_processed"] == manifest["sources"]["cam"]["processed"]


def test_more_workers_than_sources_says_how_many_start(caplog, synth_clip):
    """``--workers 2`` with one source started one worker and said nothing: a source is never split over workers."""
    from streamfiqa.cluster.fleet import Fleet
    from streamfiqa.config import load_config

    cfg = load_config(None, ["fleet.workers=3", "publish.endpoint=null"])
    with caplog.at_level("WARNING", logger="streamfiqa.cluster.fleet"):
        fleet = Fleet(cfg, [f"a={synth_clip[0]}", f"b={synth_clip[0]}"], sinks=[])
    assert len(fleet.workers) == 2 and "3 workers asked for, 2 source(s) to run: starting 2" in caplog.text


def test_a_fleet_beside_another_ray_cluster_starts_its_own(tmp_path, synth_clip, cluster):
    """Another Ray cluster runs on the machine (here this test's own, the latest started). Ray's default address
    joins it; a fleet with no ``fleet.address`` joined that cluster, its actor was never placed and the run died
    with a traceback. It starts a Ray of its own now, and publishes."""
    import json
    import subprocess
    import sys

    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "streamfiqa.cli", str(synth_clip[0]), "--workers", "1", "--set",
                           "publish.endpoint=null", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert json.loads((out / "manifest.json").read_text())["events_by_kind"].get("best", 0) >= 1
