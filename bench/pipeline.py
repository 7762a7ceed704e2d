"""The pipeline: real time on the crowd clip against the naive loop, detectors, the soak, the fleet."""
from __future__ import annotations

import json
import os
import sys
import time
import tempfile
from pathlib import Path


from bench.common import (CROWD, ROOT, SCRFD_2_5G, CountSink, config_path, cpu_s, emit, found_of, loop_clip,
                          offline_config, peak_rss_mb, rss_mb, timed)


def bench_pipeline(results: list, quick: bool, overrides: list[str] | None = None) -> None:
    """The crowd clip with offline.yaml and offline_realtime_cpu.yaml (each with ``overrides``), ours against the
    naive loop."""
    from bench.naive import run_naive

    if not CROWD.is_file():
        emit(results, {"bench": "pipeline", "skipped": f"needs {CROWD} (../shared)"})
        return
    import subprocess

    for name in ("offline.yaml", "offline_realtime_cpu.yaml"):
        # each configuration in a fresh process, so peak RSS is the pipeline's own
        sets = [a for o in overrides or [] for a in ("--set", o)]
        proc = subprocess.run([sys.executable, "-m", "bench", "--pipeline-config", name, *sets], capture_output=True,
                              text=True, cwd=ROOT, timeout=3600)
        if proc.returncode != 0:
            emit(results, {"bench": "pipeline", "config": f"configs/{name}", "error": proc.stderr[-400:]})
            continue
        ours = json.loads(proc.stdout.strip().splitlines()[-1])
        emit(results, ours)
        cfg = offline_config(name, overrides)
        frames = 30 if quick else 0
        for heavy in (True, False):
            naive = run_naive(str(CROWD), cfg, max_frames=frames // max(cfg.sources.stride, 1), heavy=heavy)
            naive_rtf = naive["video_s"] / naive["wall_s"]
            emit(results, {"bench": "pipeline_naive", "config": f"configs/{name}", **_named(overrides),
                           "heavy_on_every_face": heavy,
                           "frames": naive["frames"], "wall_s": round(naive["wall_s"], 2),
                           "realtime_factor": round(naive_rtf, 3),
                           "ratio_ours_vs_naive": round(ours["realtime_factor"] / naive_rtf, 2)})


def _shown(name: str) -> str:
    """The config a row names: relative to the repository where it lies inside it (``configs/offline.yaml``)."""
    path = config_path(name).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _named(overrides: list[str] | None) -> dict:
    """A row's ``overrides`` when there are any (``bench --update`` then replaces only rows of the same ones)."""
    return {"overrides": list(overrides)} if overrides else {}


def pipeline_once(name: str, repeats: int = 3, overrides: list[str] | None = None) -> dict:
    """Our pipeline on the crowd clip with ``configs/<name>``, ``repeats`` times (this VM's speed drifts by
    ±15 % from minute to minute); one JSON row with the median run's figures and every run's factor. ``frames_s``:
    from the start to the last frame tracked; ``track_ends_s``: after it, ending the tracks still open at the clip's
    end (their second look and face measures, :mod:`streamfiqa.pipeline.best_crop`); ``*_cpu_s``: the process's CPU
    time in each."""
    import statistics

    from streamfiqa.pipeline.build import build_runner
    from streamfiqa.io.specs import parse_sources

    runs = []
    for _ in range(repeats):
        runner = build_runner(offline_config(name, overrides), parse_sources([str(CROWD)]), [])
        last = [0.0, 0.0]  # wall and CPU time when the last frame was tracked: then the open tracks are ended
        runner.observers.append(lambda *_, last=last: last.__setitem__(slice(None), [time.perf_counter(), cpu_s()]))
        t0, c0 = time.perf_counter(), cpu_s()
        runner.run()
        wall, cpu = time.perf_counter() - t0, cpu_s() - c0
        st = runner.stats()
        src = next(iter(st["sources"].values()))
        video_s = src["decoded"] / 25.0
        runs.append({"bench": "pipeline", "clip": CROWD.name, "config": _shown(name),
                     **_named(overrides),
                     "wall_s": round(wall, 2),
                     "video_s": video_s, "realtime_factor": round(video_s / wall, 3),
                     "frames_processed": src["processed"], "faces": src["faces"], "tracks_reported": src["events"],
                     "faces_per_s": round(src["faces"] / wall, 1),
                     "frames_s": round(last[0] - t0, 2), "track_ends_s": round(t0 + wall - last[0], 2),
                     "frames_cpu_s": round(last[1] - c0, 2), "track_ends_cpu_s": round(c0 + cpu - last[1], 2),
                     "ms_per_frame": {"decode": src["decode_ms"], **st["stages_ms"]}, "detector": st.get("detector"),
                     "heavy": st.get("heavy")})
    median = statistics.median(r["realtime_factor"] for r in runs)
    row = next(r for r in runs if r["realtime_factor"] == median)
    return {**row, "realtime_factor_runs": [r["realtime_factor"] for r in runs],
            "tracks_reported_runs": [r["tracks_reported"] for r in runs], "peak_rss_mb": peak_rss_mb()}


def bench_detector(results: list, quick: bool) -> None:
    """Embedded detectors vs SCRFD-2.5G (reference) on the crowd clip and the demo clip: ms a frame, faces,
    recall of the reference's faces (IoU ≥ 0.4). ``retinaface+regions`` is RetinaFace with ``detector.full_every=5``
    (full frame 1 in 5, windows around known faces between), run on every frame."""
    import av

    from streamfiqa.detect import create_detector
    from streamfiqa.detect.regions import RegionDetector
    from streamfiqa.eval.synth import make_clip

    if not SCRFD_2_5G.is_file() or not CROWD.is_file():
        emit(results, {"bench": "detector", "skipped": "needs ../shared (SCRFD-2.5G and the crowd clip)"})
        return
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo.mp4"
        make_clip(demo, faces=4, frames=100)
        for clip, every in ((CROWD, 5 if quick else 1), (demo, 5 if quick else 1)):
            with av.open(str(clip)) as c:
                every_frame = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
            # quick: every 5th frame from the 3rd, so that none is a full frame of the region detector's cycle
            frames = every_frame[2::every] if every > 1 else every_frame
            for side in (640, 960):
                dets = {"scrfd_2.5g": create_detector("scrfd", model_path=str(SCRFD_2_5G), max_side=side,
                                                      score_threshold=0.5, min_face=12),
                        "retinaface": create_detector("retinaface", max_side=side, score_threshold=0.7, min_face=12),
                        "mtcnn": create_detector("mtcnn", max_side=side, score_threshold=0.7, min_face=12)}
                found = {}
                for name, det in list(dets.items()) + [("retinaface+regions", None)]:
                    if det is None:  # detector.full_every=5: windows need every frame; compared where the others are
                        regions = RegionDetector(dets["retinaface"], full_every=5)
                        dt, out = timed(lambda: [regions.detect_batch([f], ["clip"])[0] for f in every_frame])
                        dt *= len(frames) / len(every_frame)
                        found[name] = out[2::every] if every > 1 else out
                    else:
                        det.detect(frames[0])
                        dt, found[name] = timed(lambda: [det.detect(f) for f in frames])
                    row = {"bench": "detector", "clip": clip.name, "max_side": side, "detector": name,
                           "frames": len(frames), "ms_per_frame": round(1000 * dt / len(frames), 1),
                           "faces": sum(len(x) for x in found[name])}
                    if name != "scrfd_2.5g":
                        hit = sum(found_of(r, x) for r, x in zip(found["scrfd_2.5g"], found[name]))
                        row["recall_vs_scrfd_2.5g"] = round(hit / max(sum(len(r) for r in found["scrfd_2.5g"]), 1), 3)
                    emit(results, row)


def bench_soak(results: list, minutes: float) -> None:
    """The CCTV pipeline (configs/cctv.yaml) on a 1080p25 camera stand-in for ``minutes``: the crowd clip looped
    and replayed at its own rate as a live source. One row a minute (memory, lag, drops, events) and a summary:
    memory must level off, lag stay bounded, and every drop be counted."""
    import threading

    from pipelines import cctv
    from streamfiqa.config import load_config
    from streamfiqa.pipeline.build import build_runner
    from streamfiqa.io.specs import parse_sources

    if not CROWD.is_file():
        emit(results, {"bench": "soak", "skipped": f"needs {CROWD} (../shared)"})
        return
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "camera.mp4"
        loop_clip(CROWD, clip, minutes * 60 + 5)
        cfg = load_config(ROOT / "configs" / "cctv.yaml", ["publish.endpoint=null", "stats_interval_s=0",
                                                             'progress="false"', "sources.live=true",
                                                             "sources.realtime=true"], base=cctv.DEFAULTS)
        sink = CountSink()
        runner = build_runner(cfg, parse_sources([f"cam={clip}"], live="true"), [sink])
        stop = threading.Event()
        thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
        t0 = time.monotonic()
        thread.start()
        rows = []
        while time.monotonic() - t0 < minutes * 60 and thread.is_alive():
            time.sleep(max(0.0, min(60.0, minutes * 60 - (time.monotonic() - t0))))  # a row a minute
            src = runner.stats()["sources"].get("cam", {})
            rows.append({"bench": "soak_minute", "minute": round((time.monotonic() - t0) / 60, 1),
                         "rss_mb": round(rss_mb(), 1), "processed": src.get("processed", 0),
                         "decoded": src.get("decoded", 0), "skipped_max_fps": src.get("skipped", 0),
                         "dropped": src.get("dropped", 0), "lag_s": src.get("lag_s", 0.0), "max_lag_s": src.get("max_lag_s", 0.0),
                         "lag_skipped": src.get("lag_skipped", 0), "events": sink.events})
            emit(results, rows[-1])
        stop.set()
        thread.join(60)
        st = runner.stats()["sources"]["cam"]
        rss = [r["rss_mb"] for r in rows]
        emit(results, {"bench": "soak", "config": "configs/cctv.yaml", "minutes": round((time.monotonic() - t0) / 60, 1),
                       "source": "crowd clip looped, 1080p25, replayed in real time as a live source",
                       "decoded": st["decoded"], "processed": st["processed"], "skipped_max_fps": st["skipped"],
                       "dropped": st["dropped"],
                       "lag_skipped": st["lag_skipped"], "max_lag_s": st["max_lag_s"], "events": sink.events,
                       "events_by_kind": st["events_by_kind"], "decode_errors": st["decode_errors"],
                       "rss_mb_first_minute": rss[0] if rss else None, "rss_mb_last_minute": rss[-1] if rss else None,
                       "rss_mb_max": max(rss) if rss else None, "exit_code": runner.exit_code})


def bench_fleet(results: list, quick: bool) -> None:
    """Offline throughput of the Ray fleet with 1 and 2 workers on this machine: four generated scene clips
    (real faces), every frame, in one local Ray; frames processed a second and the 2-worker / 1-worker ratio."""
    try:
        import ray
    except ImportError:
        emit(results, {"bench": "fleet", "skipped": "needs ray (pip install 'streamfiqa[ray]')"})
        return
    from pipelines import offline
    from streamfiqa.cluster.fleet import Fleet
    from streamfiqa.config import load_config
    from streamfiqa.eval.synth import make_scene

    with tempfile.TemporaryDirectory() as tmp:
        frames = 50 if quick else 150
        clips = []
        for k in range(4):
            clips.append(str(Path(tmp) / f"clip{k}.mp4"))
            make_scene(clips[-1], frames_per_shot=frames, size=(640, 360), face_side=100, seed=k)
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        try:
            rates = {}
            for workers in (1, 2):
                cfg = load_config(None, [f"fleet.workers={workers}", "detector.max_side=640", "stats_interval_s=0",
                                         'progress="false"', f"fleet.cpus_per_worker={os.cpu_count() / workers}"],
                                  base=offline.DEFAULTS)
                sink = CountSink()
                fleet = Fleet(cfg, [f"c{k}={c}" for k, c in enumerate(clips)], sinks=[sink])
                t0 = time.perf_counter()
                fleet.run()
                wall = time.perf_counter() - t0
                done = sum(v["processed"] for v in fleet.stats["sources"].values())
                rates[workers] = done / wall
                emit(results, {"bench": "fleet", "workers": workers, "sources": len(clips), "frames": done,
                               "wall_s": round(wall, 2), "frames_per_s": round(rates[workers], 1),
                               "events": sink.events, "note": "wall includes starting the workers (model loading)"})
            emit(results, {"bench": "fleet_ratio", "ratio_2_vs_1": round(rates[2] / rates[1], 2)})
        finally:
            ray.shutdown()
