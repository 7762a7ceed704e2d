"""Side-by-side benchmarks; prints JSON lines and saves ``bench/results/<machine>.json``.

    python -m bench            # full
    python -m bench --quick    # minutes on a 2-core CPU
    python -m bench --video    # the video protocol on the test half of ../shared's real clips
    python -m bench --cameras  # how many live 1080p25 RTSP cameras this machine holds with configs/cctv.yaml

Ratios compare our path with a faithful re-run of the official loop (``bench/official.py``) or the
naive pipeline (``bench/naive.py``) on the same machine in the same run. Official-layout models
with random weights are used for speed (weights do not change the arithmetic).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench import cameras, models, pipeline, tracking, video
from bench.common import ROOT, emit, face_crops, machine, write_folder
from streamfiqa.cli.common import at_least

#: Every bench by name: (function, the result rows it writes). Those marked by ``*`` run only when named.
BENCHES = {
    "ediffiqa": ("ediffiqa_s",), "grafiqs": ("grafiqs",), "diffiqa": ("diffiqa",), "fast_tier": ("fast_tier",),
    "detector": ("detector",), "variability": ("variability",), "pipeline": ("pipeline", "pipeline_naive"),
    "tracking": ("tracking", "tracking_crowd"), "fleet": ("fleet", "fleet_ratio"), "soak*": ("soak", "soak_minute"),
    "video*": ("video", "video_cuts", "video_edc"), "cameras*": ("cameras", "cameras_step"),
    "camera_recall*": ("camera_recall",),
}
DEFAULT = [n for n in BENCHES if not n.endswith("*")]
NAMES = [n.rstrip("*") for n in BENCHES]


def merge(committed: list[dict], fresh: list[dict], rerun: set[str]) -> list[dict]:
    """``committed`` rows with those of the ``rerun`` benches replaced by ``fresh``, in place of the first replaced
    row. A row that names its ``overrides`` is replaced only by a run of the same overrides and camera rate: a camera
    bench run with cctv.yaml as it is leaves the committed rows of ``--set`` and ``--camera-fps`` runs standing."""
    def setting(r: dict) -> tuple:
        return r.get("bench"), json.dumps(r.get("overrides")), r.get("camera_fps")

    ran = {setting(r) for r in fresh}
    out, placed = [], False
    for r in committed:
        if r.get("bench") in rerun and ("overrides" not in r or setting(r) in ran):
            out += [] if placed else fresh
            placed = True
        else:
            out.append(r)
    return out if placed else out + fresh


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (minutes on 2 CPU cores)")
    p.add_argument("--only", nargs="*", default=None, choices=NAMES, metavar="BENCH",
                   help=f"subset of: {' '.join(NAMES)} (default: all but soak, video, cameras and camera_recall, which run only when named)")
    p.add_argument("--minutes", type=float, default=10.0, help="soak: how long (default 10)")
    p.add_argument("--tracking", action="store_true", help="only the MOT report (same as --only tracking)")
    p.add_argument("--video", action="store_true", help="only the video protocol on the test half of the real "
                   "clips (same as --only video; about an hour on 2 CPU cores)")
    p.add_argument("--cameras", action="store_true", help="only the camera bench (same as --only cameras; about "
                   "a minute per camera count on 2 CPU cores)")
    p.add_argument("--max-cameras", type=at_least(1), default=16, help="cameras: stop adding cameras here (default 16)")
    p.add_argument("--min-cameras", type=at_least(1), default=1, help="cameras: start with this many (default 1)")
    p.add_argument("--camera-fps", type=at_least(1), default=25, help="cameras: the rate the cameras send (default 25)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="cameras and pipeline: an override of the config they run (cctv.yaml; offline.yaml and "
                   "offline_realtime_cpu.yaml), repeatable, e.g. sources.max_fps=5")
    p.add_argument("--gpu", action="store_true", help="the GPU benches (exits 3 without a CUDA device)")
    p.add_argument("--out", default=None, help="results file (default: bench-results/<machine>-<time>.json, a new file; "
                   "the committed bench/results/<machine>.json changes only with --update)")
    p.add_argument("--update", action="store_true", help="merge the rows into the committed bench/results/<machine>.json")
    p.add_argument("--pipeline-config", default=None, help=argparse.SUPPRESS)  # one pipeline run (subprocess)
    args = p.parse_args(argv)
    if args.min_cameras > args.max_cameras:
        p.error(f"--min-cameras {args.min_cameras} is above --max-cameras {args.max_cameras}")
    if args.pipeline_config:
        from streamfiqa.config import ConfigError

        try:
            print(json.dumps(pipeline.pipeline_once(args.pipeline_config, overrides=args.overrides)))
        except ConfigError as exc:  # a config that is not there or not right: one line, as the CLI says it
            print(f"python -m bench: {exc}", file=sys.stderr)
            return 2
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bench").setLevel(logging.INFO)  # the long benches say where they are
    if args.tracking or args.video or args.cameras:
        args.only = ["tracking"] * args.tracking + ["video"] * args.video + ["cameras"] * args.cameras
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
    todo = args.only or DEFAULT
    if {"ediffiqa", "grafiqs", "diffiqa", "fast_tier"} & set(todo):
        with tempfile.TemporaryDirectory() as tmp:
            crops = face_crops(n_fast)
            folder = write_folder(crops, Path(tmp) / "fast")
            heavy_folder = write_folder(crops[:n_heavy], Path(tmp) / "heavy")
            if "ediffiqa" in todo:
                models.bench_ediffiqa(results, crops, folder, device)
            if "grafiqs" in todo:
                models.bench_grafiqs(results, crops[:n_heavy], heavy_folder, device, 50 if gpu or not args.quick else 18)
            if "diffiqa" in todo:
                few = crops[:n_heavy if gpu else 2]
                dfolder = write_folder(few, Path(tmp) / "diff")
                models.bench_diffiqa(results, few, dfolder, device, 128 if gpu else 32, 10 if gpu else 2)
            if "fast_tier" in todo:
                models.bench_fast_tier(results, crops)
    runs = {"detector": lambda: pipeline.bench_detector(results, args.quick),
            "variability": lambda: models.bench_variability(results),
            "tracking": lambda: tracking.bench_tracking(results),
            "pipeline": lambda: pipeline.bench_pipeline(results, args.quick, args.overrides),
            "fleet": lambda: pipeline.bench_fleet(results, args.quick),
            "soak": lambda: pipeline.bench_soak(results, args.minutes),
            "video": lambda: video.bench_video(results, args.quick),
            "camera_recall": lambda: cameras.bench_camera_recall(results),
            "cameras": lambda: cameras.bench_cameras(results, args.max_cameras, overrides=args.overrides,
                                                           min_cameras=args.min_cameras, camera_fps=args.camera_fps)}
    for name in NAMES:
        if name in todo and name in runs:
            runs[name]()
    if args.update:
        out = ROOT / "bench" / "results" / f"{info['name']}.json"
    else:
        out = Path(args.out) if args.out else Path("bench-results") / f"{info['name']}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.update and out.is_file():
        rows = dict(zip(NAMES, BENCHES.values()))
        results = merge(json.loads(out.read_text()), results, set().union(*(rows[t] for t in todo)) | {"machine"})
    out.write_text(json.dumps(results, indent=1))
    print(json.dumps({"bench": "saved", "path": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
