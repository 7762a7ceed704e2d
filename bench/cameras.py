"""Cameras per box: how many live 1080p25 RTSP cameras one machine holds with ``configs/cctv.yaml``.

Real clips from ``../shared`` (the crowd clip, the OpenPose street scene, talking heads) are re-encoded as a camera
would send them (1920×1080, 25 fps or ``--camera-fps``, H.264 without B-frames, a keyframe every 2 s), looped, and
pushed in real time
to the pipeline over RTSP on 127.0.0.1 by ``tests/rtsp_push.py``, one process per camera, the way the RTSP tests
serve their clips. The pipeline listens (``sources.rtsp_listen``) and runs in this process.

Cameras are added one at a time (a fresh pipeline for each count) until one does not hold: a camera holds when,
over the measured window, it processes at least 95 % of the rate ``sources.max_fps`` sets, loses no frame beyond
that policy (queue drops, packets skipped to catch up, decode errors) and its lag (now − capture time of the newest
processed frame, sampled every 0.1 s) stays ≤ 1 s.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import CROWD, ROOT, SCRFD_2_5G, CountSink, cpu_s, emit, found_of, loop_clip, rss_mb

log = logging.getLogger("bench")
TALKING = CROWD.parent / "talking"
#: The cameras in the order they are added (the list repeats past its end): real clips of few and many faces.
CLIPS = [CROWD, TALKING / "CMU-Perceptual-Computing-Lab__openpose__video.avi",
         TALKING / "polimi-ispl__icpr2020dfdc__lynaeydofd.mp4",
         TALKING / "polimi-ispl__icpr2020dfdc__ffpp_youtube_634.mp4",
         TALKING / "ajay-sainy__Wav2Lip-GFPGAN__kim_7s_raw.mp4", TALKING / "KwaiVGI__LivePortrait__s18.mp4",
         TALKING / "filby89__spectre__W040_level_3_happy_029.mp4",
         TALKING / "polimi-ispl__icpr2020dfdc__ffpp_youtube_004.mp4"]
SIZE, FPS = (1920, 1080), 25
#: What a camera can lose beyond the max_fps policy (source counters).
LOSSES = ("dropped", "lag_skipped", "decode_errors", "reconnects")


def camera_clip(src: Path, out: Path, seconds: float, fps: int = FPS) -> Path:
    """``src`` as a 1080p camera sends it at ``fps`` (letterboxed, H.264, no B-frames, a keyframe every 2 s), looped
    to ``seconds``."""
    import av
    import cv2
    import numpy as np

    once = out.with_suffix(".once.mp4")
    w, h = SIZE
    with av.open(str(src)) as inp, av.open(str(once), "w") as o:
        ist = inp.streams.video[0]
        ost = o.add_stream("libx264", rate=fps)
        ost.width, ost.height, ost.pix_fmt = w, h, "yuv420p"
        gop = 2 * fps
        ost.options = {"crf": "23", "preset": "veryfast", "bf": "0", "g": str(gop), "keyint_min": str(gop)}
        n = 0
        for frame in inp.decode(ist):
            t = frame.time if frame.time is not None else n / fps
            while n / fps <= t + 1e-6:  # resample to fps (repeat or drop frames, as a camera's clock would)
                img = frame.to_ndarray(format="bgr24")
                s = min(w / img.shape[1], h / img.shape[0])
                img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
                canvas = np.zeros((h, w, 3), np.uint8)
                y, x = (h - img.shape[0]) // 2, (w - img.shape[1]) // 2
                canvas[y:y + img.shape[0], x:x + img.shape[1]] = img
                for packet in ost.encode(av.VideoFrame.from_ndarray(canvas, format="bgr24")):
                    o.mux(packet)
                n += 1
        for packet in ost.encode():
            o.mux(packet)
    loop_clip(once, out, seconds)
    once.unlink()
    return out


def _stat_cpu_s(stat: Path) -> float:
    """User + system CPU seconds so far from a ``/proc/…/stat`` file (0 when it is gone)."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int | None = None) -> float:
    """User + system CPU seconds of this process (or of ``pid``) so far."""
    if pid is None:
        return cpu_s()
    return _stat_cpu_s(Path(f"/proc/{pid}/stat"))


def _thread_cpu() -> dict[int, float]:
    """CPU seconds so far of each thread of this process, by native thread id."""
    return {int(task.name): _stat_cpu_s(task / "stat") for task in Path("/proc/self/task").iterdir()}


def _cpu_by_role(before: dict[int, float], after: dict[int, float], roles: dict[str, set[int]],
                 seconds: float) -> dict[str, float]:
    """Cores used over ``seconds`` by the threads of each role (``roles``: role → native thread ids), and by every
    other thread as ``other`` (the inference libraries' worker pools, ZeroMQ, this bench)."""
    used = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    out = {role: sum(v for t, v in used.items() if t in tids) for role, tids in roles.items()}
    out["other"] = sum(used.values()) - sum(out.values())
    return {role: round(v / seconds, 2) for role, v in out.items()}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cameras(clips: list[Path], cfg, warm_s: float, window_s: float, fps: int = FPS) -> dict:
    """One pipeline over ``len(clips)`` pushed cameras: what each did over ``window_s`` once all are streaming and
    ``warm_s`` has passed."""
    from streamfiqa.io.specs import parse_sources
    from streamfiqa.pipeline.build import build_runner

    urls = [f"rtsp://127.0.0.1:{_free_port()}/cam{i + 1}" for i in range(len(clips))]
    specs = parse_sources([f"cam{i + 1}={u}" for i, u in enumerate(urls)], live="true")
    runner = build_runner(cfg, specs, [CountSink()])
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    pushers = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "rtsp_push.py"), str(c), u],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for c, u in zip(clips, urls)]
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60:  # every camera connected and processed a frame
            time.sleep(0.2)
            if runner.states and all(st.processed > 0 for st in runner.states):
                break
            if any(p.poll() is not None for p in pushers) or not thread.is_alive():
                break
        else:
            raise RuntimeError("cameras: not every camera streamed within 60 s")
        time.sleep(warm_s)
        before = runner.stats()
        cpu0, push0, t_start = _cpu_s(), sum(_cpu_s(p.pid) for p in pushers), time.monotonic()
        threads0 = _thread_cpu()
        lags = {sid: 0.0 for sid in before["sources"]}
        while time.monotonic() - t_start < window_s:
            time.sleep(0.1)
            for sid, s in runner.stats()["sources"].items():
                lags[sid] = max(lags[sid], s["lag_s"])
        after, elapsed = runner.stats(), time.monotonic() - t_start
        cpu, push = _cpu_s() - cpu0, sum(_cpu_s(p.pid) for p in pushers) - push0
        roles = _cpu_by_role(threads0, _thread_cpu(), {
            "decode": {st.source.native_thread_id for st in runner.states}, "runner_loop": {thread.native_id},
            "detect_thread": {t.native_id for t in threading.enumerate() if t.name == "detect"}}, elapsed)
        rss = rss_mb()
        failed = [p.args[2] for p in pushers if p.poll() not in (None, 0)]
    finally:
        stop.set()
        thread.join(60)
        for p in pushers:
            p.kill()
            p.wait()
    if failed:
        raise RuntimeError(f"cameras: pushing failed for {failed}")
    return {**_summary(before, after, lags, elapsed, cpu, push, rss, cfg.sources.max_fps, fps),
            "cpu_cores_by_role": roles}


def _summary(before: dict, after: dict, lags: dict, elapsed: float, cpu: float, push: float, rss: float,
             max_fps: float, fps: int) -> dict:
    """Per camera and in all over the window: rates, losses, lags, CPU, memory, stage times; whether all held."""
    cams = []
    for sid, a in after["sources"].items():
        b = before["sources"][sid]
        d = {k: a[k] - b[k] for k in ("processed", "decoded", "faces", *LOSSES)}
        lost = sum(d[k] for k in LOSSES)
        rate = d["processed"] / elapsed
        held = rate >= 0.95 * min(max_fps or fps, fps) and lost == 0 and lags[sid] <= 1.0
        cams.append({"camera": sid, "fps": round(rate, 2), "decoded_fps": round(d["decoded"] / elapsed, 2),
                     "faces_per_s": round(d["faces"] / elapsed, 1), "lost": lost,
                     **({"lost_by_kind": {k: d[k] for k in LOSSES if d[k]}} if lost else {}),
                     "max_lag_s": round(lags[sid], 3),
                     "held": held})
    n = len(cams)
    return {"cameras": n, "held": all(c["held"] for c in cams),
            "fps_per_camera": round(sum(c["fps"] for c in cams) / n, 2),
            "faces_per_s": round(sum(c["faces_per_s"] for c in cams), 1),
            "max_lag_s": max(c["max_lag_s"] for c in cams), "lost": sum(c["lost"] for c in cams),
            "cpu_cores": round(cpu / elapsed, 2), "cpu_cores_per_camera": round(cpu / elapsed / n, 3),
            "pushers_cpu_cores": round(push / elapsed, 2), "rss_mb": round(rss, 1),
            "rss_mb_per_camera": round(rss / n, 1), "stages_ms": after["stages_ms"], "per_camera": cams}


def bench_cameras(results: list, max_cameras: int = 16, warm_s: float = 8.0, window_s: float = 20.0,
                  overrides: list[str] | None = None, min_cameras: int = 1, camera_fps: int = FPS) -> None:
    """Rows ``cameras_step`` (one per camera count from ``min_cameras``) and ``cameras`` (the most held) with
    configs/cctv.yaml and cameras sending ``camera_fps`` frames a second."""
    from pipelines import cctv
    from streamfiqa.config import load_config

    missing = [c for c in CLIPS if not c.is_file()]
    if missing:
        emit(results, {"bench": "cameras", "skipped": f"needs {missing[0]} (../shared beside the checkout)"})
        return
    cfg = load_config(ROOT / "configs" / "cctv.yaml", ["publish.endpoint=null", "stats_interval_s=0",
                                                         'progress="false"', "sources.rtsp_listen=true",
                                                         "sources.open_timeout_s=60", *(overrides or [])],
                      base=cctv.DEFAULTS)
    held, last = 0, None
    # the encoded cameras are kept between runs (the encoder is deterministic; a partial file never is kept)
    cache = Path(tempfile.gettempdir()) / f"streamfiqa-cameras-{SIZE[1]}p{camera_fps}"
    cache.mkdir(exist_ok=True)
    seconds = warm_s + window_s + 90  # start-up, connection and the window, with room to spare
    encoded = []
    for i, c in enumerate(CLIPS):
        out = cache / f"cam{i}-{int(seconds)}s.mp4"
        if not out.is_file():
            log.info("cameras: encoding %s as a 1080p%d camera", c.name, camera_fps)
            camera_clip(c, cache / "partial.mp4", seconds, camera_fps).rename(out)
        encoded.append(out)
    for n in range(max(min_cameras, 1), max_cameras + 1):
        step = run_cameras([encoded[i % len(encoded)] for i in range(n)], cfg, warm_s, window_s, camera_fps)
        emit(results, {"bench": "cameras_step", "config": "configs/cctv.yaml", "overrides": overrides or [],
                       "camera_fps": camera_fps, "max_fps": cfg.sources.max_fps, **step})
        if not step["held"]:
            break
        held, last = n, step
    emit(results, {"bench": "cameras", "config": "configs/cctv.yaml", "overrides": overrides or [],
                   "source": f"real clips re-encoded as 1080p{camera_fps} H.264 cameras (keyframe every 2 s, no "
                             "B-frames), looped, pushed over RTSP on 127.0.0.1 in real time", "camera_fps": camera_fps,
                   "max_fps": cfg.sources.max_fps,
                   "cameras_held": held, "tried_up_to": max_cameras,
                   **({k: last[k] for k in ("fps_per_camera", "faces_per_s", "max_lag_s", "cpu_cores",
                                            "cpu_cores_per_camera", "cpu_cores_by_role", "rss_mb",
                                            "rss_mb_per_camera", "stages_ms")} if last else {})})


def bench_camera_recall(results: list, rates: tuple[int, ...] = (10, 5), full_every: int = 3) -> None:
    """Rows ``camera_recall``: what region detection (cctv.yaml's RetinaFace at 960 px, a full frame 1 in
    ``full_every``) finds of SCRFD-2.5G's faces on the crowd clip processed at each camera rate, on windowed and on
    full frames. Faces move further between frames at lower rates, and a newcomer waits longer for a full frame."""
    import av

    from streamfiqa.detect import create_detector
    from streamfiqa.detect.regions import RegionDetector

    if not SCRFD_2_5G.is_file() or not CROWD.is_file():
        emit(results, {"bench": "camera_recall", "skipped": "needs ../shared (SCRFD-2.5G and the crowd clip)"})
        return
    reference = create_detector("scrfd", model_path=str(SCRFD_2_5G), max_side=960, score_threshold=0.5, min_face=12)
    with av.open(str(CROWD)) as c:
        every = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    for rate in rates:
        frames = every[::max(1, round(FPS / rate))]
        regions = RegionDetector(create_detector("retinaface", max_side=960, score_threshold=0.7, min_face=12),
                                 full_every)
        hit, total = {True: 0, False: 0}, {True: 0, False: 0}
        for frame in frames:
            found, truth = regions.detect_batch([frame], ["crowd"])[0], reference.detect(frame)
            full = "crowd" in regions.last_full
            total[full] += len(truth)
            hit[full] += found_of(truth, found)
        emit(results, {"bench": "camera_recall", "clip": CROWD.name, "rate": rate, "full_every": full_every,
                       "frames": len(frames), "recall_windowed": round(hit[False] / max(total[False], 1), 3),
                       "recall_full": round(hit[True] / max(total[True], 1), 3),
                       "reference_faces": total[False] + total[True]})
