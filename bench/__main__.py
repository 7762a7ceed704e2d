"""Side-by-side benchmarks; prints JSON lines and saves ``bench/results/<machine>.json``.

    python -m bench            # full
    python -m bench --quick    # minutes on a 2-core CPU

Ratios compare our path with a faithful re-run of the official loop (``bench/official.py``) or the
naive pipeline (``bench/naive.py``) on the same machine in the same run. Official-layout models
with random weights are used for speed (weights do not change the arithmetic).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
CROWD = ROOT.parent / "shared" / "data" / "videos" / "crowd_walk_1080p.mp4"
log = logging.getLogger("bench")


def machine() -> dict:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"name": re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{gpu or 'cpu'}-{os.cpu_count()}c").strip("-"),
            "gpu": gpu, "cpus": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__, "python": platform.python_version()}


def emit(results: list, row: dict) -> None:
    results.append(row)
    print(json.dumps(row), flush=True)


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def face_crops(n: int) -> np.ndarray:
    """``n`` real aligned faces (the insightface photo's faces, jittered), as the pipeline holds them."""
    from streamfiqa.eval.synth import default_face_paths
    from streamfiqa.photos import load_faces

    base = load_faces(default_face_paths()[-2:], min_face=40).aligned
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = base[i % len(base)].astype(np.int16) + rng.integers(-3, 4, base.shape[1:])
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


def write_folder(crops: np.ndarray, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, c in enumerate(crops):
        cv2.imwrite(str(folder / f"{i:05d}.png"), c)
    return folder


def bench_ediffiqa(results: list, crops: np.ndarray, folder: Path, device: str) -> None:
    from bench.official import ediffiqa_loop
    from engines.export import export_onnx
    from streamfiqa.backends import create_backend
    from streamfiqa.models.common import to_input
    from streamfiqa.models.ediffiqa import EDifFIQA

    torch.manual_seed(0)
    model = EDifFIQA("S").eval()
    n = len(crops)
    ediffiqa_loop(model, folder, device=device)  # warm-up
    t_off, _ = timed(ediffiqa_loop, model, folder, 128, device)
    ours = {}
    kinds = [("torch", {"device": device, "half": device == "cuda"})]
    with tempfile.TemporaryDirectory() as tmp:
        onnx = export_onnx(model, Path(tmp) / "s.onnx")
        kinds.append(("onnxruntime", {"onnx_path": str(onnx)}))
        if device == "cuda":
            kinds.append(("tensorrt", {"onnx_path": str(onnx), "precision": "fp16", "max_batch": 512}))
        for kind, kw in kinds:
            try:
                be = create_backend(kind, module=model, max_batch=256, **kw)
            except Exception as exc:  # noqa: BLE001 - report and go on
                emit(results, {"bench": "ediffiqa_s", "backend": kind, "error": str(exc)[:200]})
                continue
            be.run(to_input(crops[:256]))  # warm-up (and engine build)
            dt, _ = timed(lambda: be.run(to_input(crops)))
            ours[kind] = n / dt
            emit(results, {"bench": "ediffiqa_s", "backend": kind, "faces": n, "faces_per_s": round(n / dt, 1)})
    best = max(ours, key=ours.get)
    emit(results, {"bench": "ediffiqa_s", "official_faces_per_s": round(n / t_off, 1), "best_backend": best,
                   "ours_faces_per_s": round(ours[best], 1), "ratio_vs_official": round(ours[best] * t_off / n, 2)})


def bench_grafiqs(results: list, crops: np.ndarray, folder: Path, device: str, depth: int) -> None:
    from bench.official import grafiqs_loop
    from streamfiqa.models.grafiqs import GraFIQs
    from streamfiqa.models.iresnet import iresnet

    torch.manual_seed(0)
    net = iresnet(depth).eval()
    n = len(crops)
    t_off, _ = timed(grafiqs_loop, net, folder, device)
    g = GraFIQs(net, "image", device=device, batch_size=64 if device == "cuda" else 16)
    g.raw(crops[:4])
    t_ours, _ = timed(g.raw, crops)
    emit(results, {"bench": "grafiqs", "backbone": f"iresnet{depth}", "faces": n,
                   "official_faces_per_s": round(n / t_off, 2), "ours_faces_per_s": round(n / t_ours, 2),
                   "ratio_vs_official": round(t_off / t_ours, 2)})


def bench_diffiqa(results: list, crops: np.ndarray, folder: Path, device: str, dim: int, repeats: int) -> None:
    from bench.official import diffiqa_loop
    from streamfiqa.models.diffiqa import DifFIQA
    from streamfiqa.models.iresnet import iresnet
    from streamfiqa.models.unet import Unet

    torch.manual_seed(0)
    unet = Unet(dim=dim).eval()

    class FR:  # the paper's FR (CosFace IResNet-50), official layout, random weights
        net = iresnet(50).eval().to(device)

    ours = DifFIQA(unet, FR, t=5, repeats=repeats, batch_size=16 if device == "cuda" else 2, device=device)
    n = len(crops)
    t_off, _ = timed(diffiqa_loop, ours.diffusion, FR.net, folder, 5, repeats, 64, device)
    t_ours, _ = timed(ours.score, crops)
    emit(results, {"bench": "diffiqa", "unet_dim": dim, "repeats": repeats, "faces": n,
                   "official_faces_per_s": round(n / t_off, 3), "ours_faces_per_s": round(n / t_ours, 3),
                   "ratio_vs_official": round(t_off / t_ours, 2)})


def bench_pipeline(results: list, quick: bool) -> None:
    from bench.naive import run_naive

    if not CROWD.is_file():
        emit(results, {"bench": "pipeline", "skipped": f"needs {CROWD} (../shared)"})
        return
    import subprocess

    for name in ("offline.yaml", "offline_realtime_cpu.yaml"):
        # each configuration in a fresh process, so peak RSS is the pipeline's own
        proc = subprocess.run([sys.executable, "-m", "bench", "--pipeline-config", name], capture_output=True,
                              text=True, cwd=ROOT, timeout=3600)
        if proc.returncode != 0:
            emit(results, {"bench": "pipeline", "config": f"configs/{name}", "error": proc.stderr[-400:]})
            continue
        ours = json.loads(proc.stdout.strip().splitlines()[-1])
        emit(results, ours)
        cfg = _config(name)
        frames = 30 if quick else 0
        for heavy in (True, False):
            naive = run_naive(str(CROWD), cfg, max_frames=frames // max(cfg.sources.stride, 1), heavy=heavy)
            naive_rtf = naive["video_s"] / naive["wall_s"]
            emit(results, {"bench": "pipeline_naive", "config": f"configs/{name}", "heavy_on_every_face": heavy,
                           "frames": naive["frames"], "wall_s": round(naive["wall_s"], 2),
                           "realtime_factor": round(naive_rtf, 3),
                           "ratio_ours_vs_naive": round(ours["realtime_factor"] / naive_rtf, 2)})


def bench_fast_tier(results: list, crops: np.ndarray) -> None:
    """The embedded students' throughput, batched as the runner batches them (ONNX Runtime on CPU)."""
    from streamfiqa.quality.scorers import create_scorer

    for name, args in (("fiqa_fast", {}), ("fiqa_fast", {"precision": "int8"}), ("fiqa_heavy", {})):
        for batch in (6, 64, 256):  # 6: a crowd frame's faces, as the runner batches them every frame
            scorer = create_scorer(name, batch_size=batch, **args)
            scorer.score(crops[:batch])
            dt, _ = timed(lambda: [scorer.score(crops[i:i + batch]) for i in range(0, len(crops), batch)])
            emit(results, {"bench": "fast_tier", "scorer": name, **args, "batch": batch, "faces": len(crops),
                           "faces_per_s": round(len(crops) / dt, 1),
                           "network_runs_per_face": sum(len(m.views(crops[:1]))
                                                        for m in getattr(scorer, "members", [scorer]))})


def bench_detector(results: list, quick: bool) -> None:
    """Embedded detectors vs SCRFD-2.5G (reference) on the crowd clip and the demo clip: ms a frame, faces,
    recall of the reference's faces (IoU ≥ 0.4). ``retinaface+regions`` is RetinaFace with ``detector.full_every=5``
    (full frame 1 in 5, windows around known faces between), run on every frame."""
    import av

    from streamfiqa.detect import create_detector
    from streamfiqa.detect.regions import RegionDetector
    from streamfiqa.eval.synth import make_clip
    from streamfiqa.track.tracker import iou_matrix

    scrfd = ROOT.parent / "shared" / "models" / "scrfd" / "scrfd_2.5g_kps.onnx"
    if not scrfd.is_file() or not CROWD.is_file():
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
                dets = {"scrfd_2.5g": create_detector("scrfd", model_path=str(scrfd), max_side=side,
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
                        hit = sum(int((iou_matrix(r.boxes, x.boxes).max(1) >= 0.4).sum()) if len(r) and len(x) else 0
                                  for r, x in zip(found["scrfd_2.5g"], found[name]))
                        row["recall_vs_scrfd_2.5g"] = round(hit / max(sum(len(r) for r in found["scrfd_2.5g"]), 1), 3)
                    emit(results, row)


def bench_variability(results: list, photos: int = 300) -> None:
    """How much the fast score moves when the same face is aligned from different detectors' landmarks
    (MTCNN, SCRFD-2.5G, YuNet, RetinaFace) or from RetinaFace's landmarks jittered by ±2 px, on held-out
    celeba_ids photos; and the same spread for the robust score (mean over 4 jittered alignments + mirror)."""
    from scipy.stats import spearmanr

    from streamfiqa.align import ARCFACE_TEMPLATE, similarity_transform
    from streamfiqa.detect import create_detector
    from streamfiqa.eval.facedata import celeba_ids_dir, read_identities, shared_dir
    from streamfiqa.quality.scorers import create_scorer

    models = shared_dir() / "models"
    if not celeba_ids_dir().is_dir():
        emit(results, {"bench": "variability", "skipped": "needs ../shared celeba_ids"})
        return
    dets = {"retinaface": create_detector("retinaface", score_threshold=0.5, min_face=10),
            "mtcnn": create_detector("mtcnn", score_threshold=0.5, min_face=10),
            "scrfd_2.5g": create_detector("scrfd", model_path=str(models / "scrfd" / "scrfd_2.5g_kps.onnx"),
                                          score_threshold=0.3, min_face=10),
            "yunet": create_detector("yunet", model_path=str(models / "yunet" / "face_detection_yunet_2023mar.onnx"),
                                     score_threshold=0.5, min_face=10)}
    paths = read_identities(celeba_ids_dir()).split("test").paths[:photos]
    rng = np.random.default_rng(0)
    crops: dict[str, list] = {k: [] for k in [*dets, "jitter_2px"]}
    for path in paths:
        img = cv2.imread(path)
        found = {}
        for name, det in dets.items():
            f = det.detect(img)
            if not len(f):
                break
            found[name] = f.landmarks[int(np.argmax(f.sizes))]
        if len(found) < len(dets):
            continue
        found["jitter_2px"] = found["retinaface"] + rng.uniform(-2, 2, (5, 2))
        for name, lm in found.items():
            crops[name].append(cv2.warpAffine(img, similarity_transform(lm, ARCFACE_TEMPLATE), (112, 112)))
    for label, scorer in (("fiqa_fast", create_scorer("fiqa_fast")),
                          ("fiqa_fast robust (jitter 4 + flip)", create_scorer("fiqa_fast", jitter=4, flip=True))):
        scores = {k: scorer.score(np.stack(v)) for k, v in crops.items()}
        ref = scores["retinaface"]
        spread = float(ref.std())
        per = {k: {"mean_abs_diff": round(float(np.abs(v - ref).mean()), 4),
                   "rel_to_score_std": round(float(np.abs(v - ref).mean() / spread), 3),
                   "spearman": round(float(spearmanr(v, ref).statistic), 3)} for k, v in scores.items() if k != "retinaface"}
        across = np.stack([v for k, v in scores.items() if k != "jitter_2px"]).std(0)
        emit(results, {"bench": "variability", "scorer": label, "faces": len(ref), "score_std_over_faces": round(spread, 4),
                       "mean_std_across_detectors": round(float(across.mean()), 4),
                       "vs_retinaface": per})


class CountSink:
    """A sink that only counts events (benches measure the pipeline, not a disk or a socket)."""

    events = 0

    def emit(self, event) -> None:
        self.events += 1

    def close(self) -> None:
        pass


def loop_clip(src: Path, out: Path, seconds: float) -> int:
    """Remux ``src`` end to end (no re-encoding) until it lasts ``seconds``; returns the number of copies."""
    import av

    with av.open(str(src)) as inp:
        ist = inp.streams.video[0]
        packets = [(bytes(p), p.pts, p.dts, p.duration, p.is_keyframe) for p in inp.demux(ist) if p.dts is not None]
        span = max(p[1] + (p[3] or 0) for p in packets) - min(p[1] for p in packets)
        loops = int(seconds / float(span * ist.time_base)) + 1
        with av.open(str(out), "w") as o:
            ost = o.add_stream_from_template(ist)
            for k in range(loops):
                for data, pts, dts, dur, key in packets:
                    q = av.Packet(data)
                    q.pts, q.dts, q.duration, q.time_base, q.is_keyframe = pts + k * span, dts + k * span, dur, \
                        ist.time_base, key
                    q.stream = ost
                    o.mux(q)
    return loops


def rss_mb() -> float:
    """This process's resident memory now (MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return peak_rss_mb()


def bench_soak(results: list, minutes: float) -> None:
    """The CCTV pipeline (configs/cctv.yaml) on a 1080p25 camera stand-in for ``minutes``: the crowd clip looped
    and replayed at its own rate as a live source. One row a minute (memory, lag, drops, events) and a summary:
    memory must level off, lag stay bounded, and every drop be counted."""
    import threading

    from pipelines import cctv
    from streamfiqa.config import load_config
    from streamfiqa.pipeline.build import build_runner
    from streamfiqa.io.sources import parse_sources

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
    from streamfiqa.config import load_config
    from streamfiqa.cluster.fleet import Fleet
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


def bench_tracking(results: list) -> None:
    """MOT metrics on generated scenes (crossings, an exit and re-entry, a hard cut): the tracker as it was
    (geometry only, no cut detection) against appearance + re-identification + cuts."""
    from pipelines.offline import DEFAULTS
    from streamfiqa.eval.tracking import mot_metrics, track_clip
    from streamfiqa.eval.synth import make_scene

    before = ["tracker.appearance=off", "sources.shot_cuts=false", "tracker.reid_window_s=0"]
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (0, 1, 2):
            clip = Path(tmp) / f"scene{seed}.mp4"
            truth = make_scene(clip, seed=seed)
            for label, extra in (("before", before), ("after", [])):
                rows, events = track_clip(str(clip), [*extra, "quality.heavy=null"], DEFAULTS)
                m = mot_metrics(truth.frames, rows, shots=truth.shot_starts)
                emit(results, {"bench": "tracking", "scene_seed": seed, "tracker": label, **m,
                               "best_events": sum(e["event"] == "best" for e in events)})
    if CROWD.is_file():
        for label, extra in (("before", before), ("after", [])):
            _, events = track_clip(str(CROWD), extra, DEFAULTS)
            emit(results, {"bench": "tracking_crowd", "tracker": label,
                           "tracks_reported": sum(e["event"] == "best" for e in events)})


def _config(name: str):
    from pipelines import offline
    from streamfiqa.config import load_config

    return load_config(ROOT / "configs" / name, ["stats_interval_s=0", 'progress="false"'], base=offline.DEFAULTS)


def pipeline_once(name: str, repeats: int = 3) -> dict:
    """Our pipeline on the crowd clip with ``configs/<name>``, ``repeats`` times (this VM's speed drifts by
    ±15 % from minute to minute); one JSON row with the median run's figures and every run's factor."""
    import statistics

    from streamfiqa.pipeline.build import build_runner
    from streamfiqa.io.sources import parse_sources

    runs = []
    for _ in range(repeats):
        runner = build_runner(_config(name), parse_sources([str(CROWD)]), [])
        t0 = time.perf_counter()
        runner.run()
        wall = time.perf_counter() - t0
        st = runner.stats()
        src = next(iter(st["sources"].values()))
        video_s = src["decoded"] / 25.0
        runs.append({"bench": "pipeline", "clip": CROWD.name, "config": f"configs/{name}", "wall_s": round(wall, 2),
                     "video_s": video_s, "realtime_factor": round(video_s / wall, 3),
                     "frames_processed": src["processed"], "faces": src["faces"], "tracks_reported": src["events"],
                     "faces_per_s": round(src["faces"] / wall, 1),
                     "ms_per_frame": {"decode": src["decode_ms"], **st["stages_ms"]}, "detector": st.get("detector"),
                     "heavy": st.get("heavy")})
    median = statistics.median(r["realtime_factor"] for r in runs)
    row = next(r for r in runs if r["realtime_factor"] == median)
    return {**row, "realtime_factor_runs": [r["realtime_factor"] for r in runs],
            "tracks_reported_runs": [r["tracks_reported"] for r in runs], "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it does not survive exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (minutes on 2 CPU cores)")
    p.add_argument("--only", nargs="*", default=None,
                   help="subset: ediffiqa grafiqs diffiqa fast_tier detector variability pipeline tracking fleet; "
                        "soak runs only when named")
    p.add_argument("--minutes", type=float, default=10.0, help="soak: how long (default 10)")
    p.add_argument("--tracking", action="store_true", help="only the MOT report (same as --only tracking)")
    p.add_argument("--gpu", action="store_true", help="the GPU benches (exits 3 without a CUDA device)")
    p.add_argument("--out", default=None, help="results file (default bench/results/<machine>.json)")
    p.add_argument("--pipeline-config", default=None, help=argparse.SUPPRESS)  # one pipeline run (subprocess)
    args = p.parse_args(argv)
    if args.pipeline_config:
        print(json.dumps(pipeline_once(args.pipeline_config)))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.tracking:
        args.only = ["tracking"]
    if args.gpu and not torch.cuda.is_available():
        print(json.dumps({"bench": "gpu", "skipped": "no CUDA device here; run it where a GPU is lent"}))
        return 3
    info = machine()
    device = "cuda" if info["gpu"] else "cpu"
    results: list = []
    emit(results, {"bench": "machine", **info, "quick": args.quick})
    gpu = device == "cuda"
    n_fast = 4096 if gpu else (256 if args.quick else 1024)
    n_heavy = 64 if gpu else (8 if args.quick else 32)
    todo = args.only or ["ediffiqa", "grafiqs", "diffiqa", "fast_tier", "detector", "variability", "pipeline",
                         "tracking", "fleet"]
    with tempfile.TemporaryDirectory() as tmp:
        crops = face_crops(n_fast)
        folder = write_folder(crops, Path(tmp) / "fast")
        heavy_folder = write_folder(crops[:n_heavy], Path(tmp) / "heavy")
        if "ediffiqa" in todo:
            bench_ediffiqa(results, crops, folder, device)
        if "grafiqs" in todo:
            bench_grafiqs(results, crops[:n_heavy], heavy_folder, device, 50 if gpu or not args.quick else 18)
        if "diffiqa" in todo:
            few = crops[:n_heavy if gpu else 2]
            dfolder = write_folder(few, Path(tmp) / "diff")
            bench_diffiqa(results, few, dfolder, device, 128 if gpu else 32, 10 if gpu else 2)
        if "fast_tier" in todo:
            bench_fast_tier(results, crops)
    if "detector" in todo:
        bench_detector(results, args.quick)
    if "variability" in todo:
        bench_variability(results)
    if "tracking" in todo:
        bench_tracking(results)
    if "pipeline" in todo:
        bench_pipeline(results, args.quick)
    if "fleet" in todo:
        bench_fleet(results, args.quick)
    if "soak" in todo:
        bench_soak(results, args.minutes)
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"{info['name']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.only and out.is_file():  # keep the earlier rows of the benches not re-run
        rerun = {"ediffiqa": {"ediffiqa_s"}, "grafiqs": {"grafiqs"}, "diffiqa": {"diffiqa"},
                 "pipeline": {"pipeline", "pipeline_naive"}, "tracking": {"tracking", "tracking_crowd"},
                 "fleet": {"fleet", "fleet_ratio"}, "soak": {"soak", "soak_minute"}}
        names = set().union(*(rerun.get(t, {t}) for t in todo)) | {"machine"}
        results = [r for r in json.loads(out.read_text()) if r.get("bench") not in names] + results
    out.write_text(json.dumps(results, indent=1))
    print(json.dumps({"bench": "saved", "path": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
