#!/usr/bin/env python3
"""streamfiqa command line: run a pipeline on sources, listen to events, or make a demo clip.

    python run_stream.py SOURCE... [--pipeline cctv|enroll|offline] [--config FILE] [--out DIR]
                                   [--publish ENDPOINT] [--set key=value]...
    python run_stream.py listen ENDPOINT [--save DIR] [--count N]
    python run_stream.py demo [--out DIR]
    python run_stream.py score PATH... [--scorer NAME] [--aligned] [--arg key=value]...
    python run_stream.py models [--config FILE]
    python run_stream.py degrade [PATH...] [--scorer NAME]
    python run_stream.py eval [--pairs CSV] [--images DIR] [--scorer NAME]... [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

COMMANDS = ("listen", "demo", "score", "models", "degrade", "eval")
log = logging.getLogger("streamfiqa")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum, _frame):
        log.info("received %s: flushing active tracks and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_stream.py", description="Best-quality face crops from video streams and files.",
        epilog="Other commands (each with --help): listen, demo, score, models, degrade, eval. "
               "SOURCE is a video file, an image folder, rtsp://..., http(s)://... (HLS too) or /dev/videoN; "
               "prefix ID= to name it (cam1=rtsp://...).")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="sources to read, several at once")
    p.add_argument("--pipeline", choices=("cctv", "enroll", "offline"), default=None,
                   help="user journey (default: the config's 'pipeline', else offline for files, cctv for live)")
    p.add_argument("--config", metavar="FILE", help="YAML config (see configs/ and the README reference)")
    p.add_argument("--out", metavar="DIR", help="write DIR/events.jsonl and DIR/crops/ (output.dir)")
    p.add_argument("--publish", metavar="ENDPOINT", help="ZeroMQ endpoint to bind, e.g. tcp://127.0.0.1:5556 "
                   "(publish.endpoint; cctv and enroll publish there by default)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, dotted (tracker.max_age=30); repeatable")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p


def cmd_run(argv: list[str]) -> int:
    args = run_parser().parse_args(argv)
    _setup_logging(args.log_level)
    import yaml

    from pipelines import PIPELINES
    from streamfiqa.config import ConfigError, load_config
    from streamfiqa.sources import parse_sources

    name = args.pipeline
    try:
        if name is None and args.config:
            name = (yaml.safe_load(Path(args.config).read_text()) or {}).get("pipeline")
        if name is None:
            live = any(s.live for s in parse_sources(args.sources))
            name = "cctv" if live else "offline"
        if name not in PIPELINES:
            raise ConfigError(f"pipeline: expected one of {', '.join(PIPELINES)}, found {name!r}")
        overrides = list(args.overrides) + [f"pipeline={name}"]
        if args.out:
            overrides.append(f"output.dir={args.out}")
        if args.publish:
            overrides.append(f"publish.endpoint={args.publish}")
        cfg = load_config(args.config, overrides, base=PIPELINES[name].DEFAULTS)
    except (ConfigError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    return PIPELINES[name].run(args.sources, cfg, _stop_on_signals())


def cmd_listen(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="run_stream.py listen", description="Print events received over ZeroMQ.")
    p.add_argument("endpoint", help="publisher endpoint, e.g. tcp://127.0.0.1:5556")
    p.add_argument("--save", metavar="DIR", help="save DIR/events.jsonl and the crops")
    p.add_argument("--count", type=int, default=0, help="exit after N events (default: never)")
    p.add_argument("--timeout", type=float, default=0.0, help="exit after this many seconds without an event")
    p.add_argument("--pull", action="store_true", help="PULL from a PUSH publisher instead of SUB")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    args = p.parse_args(argv)
    _setup_logging(args.log_level)
    from streamfiqa.publish import listen

    _stop_on_signals()
    try:
        n = listen(args.endpoint, args.save, args.count, args.timeout, pull=args.pull)
    except KeyboardInterrupt:
        return 0
    return 0 if not args.count or n >= args.count else 1


def cmd_demo(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="run_stream.py demo",
        description="Make a demo clip from the face photo in the insightface wheel and run the offline pipeline.")
    p.add_argument("--out", default="demo_out", metavar="DIR", help="output directory (default: demo_out)")
    p.add_argument("--faces", type=int, default=4, help="faces in the clip (at most 6)")
    p.add_argument("--frames", type=int, default=100, help="clip length in frames")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    args = p.parse_args(argv)
    _setup_logging(args.log_level)
    from streamfiqa.synth import make_clip

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clip = out / "demo.mp4"
    truth = make_clip(clip, faces=args.faces, frames=args.frames)
    log.info("wrote %s (sharp frame of each face: %s)", clip, truth.sharp_frame)
    (out / "demo_truth.json").write_text(json.dumps({"sharp_frame": truth.sharp_frame}))
    return cmd_run([str(clip), "--pipeline", "offline", "--out", str(out), "--log-level", args.log_level])


def _scorer_args(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--arg: expected key=value, found {item!r}")
        out[key.strip()] = yaml.safe_load(raw)
    return out


def _add_scorer_options(p: argparse.ArgumentParser, default: str, many: bool = False) -> None:
    p.add_argument("--scorer", default=None if many else default, action="append" if many else "store",
                   help=f"scorer name (see 'run_stream.py models'; default {default})")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="scorer argument, e.g. weights=ediffiqaS.pth, point=block2 (applies to every --scorer)")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))


def cmd_score(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="run_stream.py score",
                                description="Score face images; one JSON line per face on stdout.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (walked recursively)")
    p.add_argument("--aligned", action="store_true", help="images are aligned 112×112 crops (no detection)")
    _add_scorer_options(p, "crop_iqa")
    args = p.parse_args(argv)
    _setup_logging(args.log_level)
    from streamfiqa.tools import load_faces, score_faces

    try:
        faces = load_faces(args.paths, aligned=args.aligned)
        scores = score_faces(faces, args.scorer, _scorer_args(args.arg))
    except (ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    for path, face, s in zip(faces.paths, faces.faces, scores):
        print(json.dumps({"path": path, "face": face, "scorer": args.scorer, "score": round(float(s), 6)}))
    return 0


def cmd_models(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="run_stream.py models",
                                description="List scorers and FR models and whether their weights are present.")
    p.add_argument("--config", metavar="FILE", help="YAML config whose quality.scorer/heavy args name weights")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = p.parse_args(argv)
    from streamfiqa.config import load_config
    from streamfiqa.tools import model_table

    configured = {}
    if args.config:
        q = load_config(args.config).quality
        configured = {q.scorer: q.scorer_args, q.heavy: q.heavy_args}
    rows = model_table(configured)
    for r in rows:
        if args.json:
            print(json.dumps(r))
        else:
            print(f"{r['kind']:7} {r['name']:18} {'yes' if r['available'] else 'no ':3}  {r['weights']}")
    return 0


def cmd_degrade(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="run_stream.py degrade",
        description="Degradation ranking check: fraction of faces whose clean crop outscores each degraded copy.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="face photos (default: ../shared deepface set "
                   "if present, plus the insightface wheel's photos)")
    _add_scorer_options(p, "crop_iqa")
    args = p.parse_args(argv)
    _setup_logging(args.log_level)
    from streamfiqa.degrade import ranking_table
    from streamfiqa.quality import create_scorer
    from streamfiqa.tools import default_face_paths, load_faces

    faces = load_faces(args.paths or default_face_paths(), min_face=40)
    scorer = create_scorer(args.scorer, **_scorer_args(args.arg))
    table = ranking_table(scorer.score, faces.aligned)
    print(json.dumps({"scorer": args.scorer, "faces": len(faces.aligned),
                      "clean_above_degraded": {k: round(v, 4) for k, v in table.items()},
                      "bar_0.9_met": all(v >= 0.9 for v in table.values())}))
    return 0


def cmd_eval(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="run_stream.py eval",
                                description="EDC curves and pAUC of scorers on labelled pairs; writes edc.json/png.")
    root = Path(__file__).resolve().parent.parent / "shared" / "data" / "faces" / "deepface"
    p.add_argument("--pairs", default=str(root / "master.csv"), help="CSV file_x,file_y,Decision")
    p.add_argument("--images", default=None, help="folder of the pair images (default: the CSV's folder)")
    p.add_argument("--fr", default="facenet", help="FR model for comparison scores (default: facenet)")
    p.add_argument("--fmr", type=float, default=1e-3)
    p.add_argument("--out", default="eval_out", help="output folder")
    p.add_argument("--degrade", type=int, default=None, metavar="SEED",
                   help="replace each image's crop by a seeded random choice among clean and the six "
                        "degradation kinds (a harder protocol; tier0 is then left out)")
    _add_scorer_options(p, "crop_iqa, facenet_fusion, tier0", many=True)
    args = p.parse_args(argv)
    _setup_logging(args.log_level)
    import numpy as np

    from streamfiqa.degrade import degrade_randomly
    from streamfiqa.evaluate import edc, pair_index, read_pairs, write_report
    from streamfiqa.models.fr import create_fr
    from streamfiqa.tools import load_faces, score_faces

    try:
        pairs = read_pairs(args.pairs)
    except (OSError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    folder = Path(args.images or Path(args.pairs).parent)
    names = sorted(set(pairs.a) | set(pairs.b))
    faces = load_faces([str(folder / n) for n in names], largest_only=True)
    scorers = args.scorer or ["crop_iqa", "facenet_fusion", "tier0"]
    applied = None
    if args.degrade is not None:
        faces.aligned, applied = degrade_randomly(faces.aligned, args.degrade)
        scorers = [s for s in scorers if s != "tier0"]
    keep, ia, ib = pair_index(pairs, [Path(p).name for p in faces.paths])
    emb = create_fr(args.fr).embed(faces.aligned)
    sim = (emb[ia] * emb[ib]).sum(1)
    gen = pairs.genuine[keep]
    curves = {}
    for name in scorers:
        q = score_faces(faces, name, _scorer_args(args.arg))
        curves[name] = edc(sim, np.minimum(q[ia], q[ib]), gen, args.fmr)
        print(json.dumps({"scorer": name, "pauc_0.2": round(curves[name]["pauc_0.2"], 5),
                          "pauc_0.3": round(curves[name]["pauc_0.3"], 5), "fnmr_at_0": curves[name]["fnmr"][0]}))
    extra = {"pairs": int(keep.sum()), "genuine": int(gen.sum()), "impostor": int((~gen).sum()),
             "skipped_pairs": int((~keep).sum()), "fr": args.fr, "fmr": args.fmr,
             "degrade_seed": args.degrade, "degradations": applied}
    js, png = write_report(curves, extra, args.out)
    print(json.dumps({**extra, "json": str(js), "plot": str(png)}))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        cmds = {"listen": cmd_listen, "demo": cmd_demo, "score": cmd_score, "models": cmd_models,
                "degrade": cmd_degrade, "eval": cmd_eval}
        return cmds[argv[0]](argv[1:])
    return cmd_run(argv)


if __name__ == "__main__":
    sys.exit(main())
