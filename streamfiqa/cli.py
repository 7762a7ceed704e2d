"""streamfiqa command line (``streamfiqa …`` once installed, or ``python run_stream.py …`` from a checkout).

    streamfiqa SOURCE... [--pipeline cctv|enroll|offline] [--config FILE] [--out DIR]
                                   [--publish ENDPOINT] [--workers N] [--set key=value]...
    streamfiqa listen ENDPOINT [--save DIR] [--count N]
    streamfiqa demo [--out DIR]
    streamfiqa score PATH... [--scorer NAME] [--aligned] [--arg key=value]...
    streamfiqa models [--config FILE]
    streamfiqa degrade [PATH...] [--scorer NAME]
    streamfiqa eval [--ids DIR] [--scorer NAME]... [--fr NAME]... [--protocol P]... [--out DIR]
    streamfiqa distil [INPUT...] --out DIR [--arch mfn80] [--labels utility]
    streamfiqa quantize [--weights FILE | --student NAME] [--calibration DIR] [--out FILE]
    streamfiqa keys DIR
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from streamfiqa.config import PIPELINES

COMMANDS = ("listen", "demo", "score", "models", "degrade", "eval", "distil", "quantize", "keys")
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
        prog="streamfiqa", description="Best-quality face crops from video streams and files.",
        epilog="Other commands (each with --help): listen, demo, score, models, degrade, eval, distil, quantize, "
               "keys. "
               "SOURCE is a video file, an image folder, rtsp://..., http(s)://... (HLS too) or /dev/videoN; "
               "prefix ID= to name it (cam1=rtsp://...).")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="sources to read, several at once")
    p.add_argument("--pipeline", choices=PIPELINES, default=None,
                   help="user journey (default: the config's 'pipeline', else offline for files, cctv for live)")
    p.add_argument("--config", metavar="FILE", help="YAML config (see configs/ and the README reference)")
    p.add_argument("--out", metavar="DIR", help="write DIR/events.jsonl and DIR/crops/ (output.dir)")
    p.add_argument("--publish", metavar="ENDPOINT", help="ZeroMQ endpoint to bind, e.g. tcp://127.0.0.1:5556 "
                   "(publish.endpoint; cctv and enroll publish there by default)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, dotted (tracker.max_age=30); repeatable")
    p.add_argument("--workers", type=int, metavar="N", help="spread the sources over N Ray workers "
                   "(fleet.workers; --set fleet.address=auto joins a running cluster; pip install 'streamfiqa[ray]')")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p


def cmd_run(argv: list[str]) -> int:
    args = run_parser().parse_args(argv)
    _setup_logging(args.log_level)
    from pipelines import PIPELINES
    from streamfiqa.config import ConfigError, load_config, read_yaml
    from streamfiqa.io.sources import parse_sources

    name = args.pipeline
    try:
        if name is None and args.config:
            name = read_yaml(args.config).get("pipeline")
        if name is None:
            live = any(s.live for s in parse_sources(args.sources, strict=False))
            name = "cctv" if live else "offline"
        if name not in PIPELINES:
            raise ConfigError(f"pipeline: expected one of {', '.join(PIPELINES)}, found {name!r}")
        overrides = list(args.overrides) + [f"pipeline={name}"]
        if args.out:
            overrides.append(f"output.dir={args.out}")
        if args.publish:
            overrides.append(f"publish.endpoint={args.publish}")
        if args.workers is not None:
            overrides.append(f"fleet.workers={args.workers}")
        cfg = load_config(args.config, overrides, base=PIPELINES[name].DEFAULTS)
        from streamfiqa.pipeline import build

        if cfg.fleet.workers:
            from streamfiqa.cluster.fleet import Fleet

            try:
                import ray  # noqa: F401
            except ImportError:
                raise ConfigError("fleet.workers: expected Ray to be installed (pip install 'streamfiqa[ray]'), "
                                  "found no 'ray' module") from None
            if all(s.kind == "missing" for s in parse_sources(args.sources, cfg.sources.live, strict=False)):
                parse_sources(args.sources[:1], cfg.sources.live)  # raises the first path's error
            runner = Fleet(cfg, args.sources)  # sinks and endpoint are checked here, before Ray starts
        else:
            runner = build.build(args.sources, cfg)  # models, sinks, endpoint: a user's mistake fails here
    except (ConfigError, ValueError, OSError) as exc:  # FileNotFoundError is an OSError
        log.error("%s", exc)
        return 2
    return runner.run(_stop_on_signals())


def cmd_listen(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="streamfiqa listen", description="Print events received over ZeroMQ.")
    p.add_argument("endpoint", help="publisher endpoint, e.g. tcp://127.0.0.1:5556")
    p.add_argument("--save", metavar="DIR", help="save DIR/events.jsonl and the crops")
    p.add_argument("--count", type=int, default=0, help="exit after N events (default: never)")
    p.add_argument("--timeout", type=float, default=0.0, help="exit after this many seconds without an event")
    p.add_argument("--pull", action="store_true", help="PULL from a PUSH publisher instead of SUB")
    p.add_argument("--curve-server-key", metavar="FILE", help="the publisher's CURVE public key (.key): CURVE on")
    p.add_argument("--curve-key", metavar="FILE", help="this subscriber's CURVE key pair (.key_secret); "
                   "default: an ephemeral one (enough when the publisher allows any CURVE client)")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    args = p.parse_args(argv)
    _setup_logging(args.log_level)
    from streamfiqa.io.sinks import listen

    stats: dict = {}
    try:
        n = listen(args.endpoint, args.save, args.count, args.timeout, pull=args.pull, stop=_stop_on_signals(),
                   server_key=args.curve_server_key, secret_key=args.curve_key, stats=stats)
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    if stats.get("bad"):
        log.warning("skipped %d malformed messages", stats["bad"])
    return 0 if not args.count or n >= args.count else 1


def cmd_keys(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="streamfiqa keys",
                                description="Make a ZeroMQ CURVE key pair: DIR/NAME.key (public, give it to the "
                                            "other side) and DIR/NAME.key_secret (keep it private).")
    p.add_argument("dir", help="folder to write the keys into")
    p.add_argument("--name", default="streamfiqa", help="file stem (default: streamfiqa)")
    args = p.parse_args(argv)
    import zmq.auth

    folder = Path(args.dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / f"{args.name}.key_secret").exists():
            raise FileExistsError(f"{folder / args.name}.key_secret exists; choose another --name or folder")
        public, secret = zmq.auth.create_certificates(str(folder), args.name)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    Path(secret).chmod(0o600)
    print(json.dumps({"public": public, "secret": secret}))
    return 0


def cmd_demo(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="streamfiqa demo",
        description="Make a demo clip from the face photo in the insightface wheel and run the offline pipeline.")
    p.add_argument("--out", default="demo_out", metavar="DIR", help="output directory (default: demo_out)")
    p.add_argument("--faces", type=int, default=4, help="faces in the clip (at most 6)")
    p.add_argument("--frames", type=int, default=100, help="clip length in frames")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    args = p.parse_args(argv)
    _setup_logging(args.log_level)
    from streamfiqa.eval.synth import make_clip

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clip = out / "demo.mp4"
    truth = make_clip(clip, faces=args.faces, frames=args.frames)
    log.info("wrote %s (sharp frame of each face: %s)", clip, truth.sharp_frame)
    (out / "demo_truth.json").write_text(json.dumps({"sharp_frame": truth.sharp_frame}))
    return cmd_run([str(clip), "--pipeline", "offline", "--out", str(out), "--log-level", args.log_level,
                    "--set", "output.overwrite=true"])  # the demo owns its folder: a re-run replaces it


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
                   help=f"scorer name (see 'streamfiqa models'; default {default})")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="scorer argument, e.g. weights=ediffiqaS.pth, point=block2 (applies to every --scorer)")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))


def cmd_score(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="streamfiqa score",
                                description="Score face images; one JSON line per face on stdout.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (walked recursively)")
    p.add_argument("--aligned", action="store_true", help="images are aligned 112×112 crops (no detection)")
    _add_scorer_options(p, "crop_iqa")
    args = p.parse_args(argv)
    _setup_logging(args.log_level)
    from streamfiqa.photos import load_faces, score_faces

    try:
        faces = load_faces(args.paths, aligned=args.aligned)
        scores = score_faces(faces, args.scorer, _scorer_args(args.arg))
    except (ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    for path, face, s in zip(faces.paths, faces.faces, scores):
        print(json.dumps({"path": path, "face": face, "scorer": args.scorer, "score": float(s)}))
    return 0


def cmd_models(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="streamfiqa models",
                                description="List scorers and FR models and whether their weights are present.")
    p.add_argument("--config", metavar="FILE", help="YAML config whose quality.scorer/heavy args name weights")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = p.parse_args(argv)
    from streamfiqa.config import load_config
    from streamfiqa.quality.scorers import model_table

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
        prog="streamfiqa degrade",
        description="Degradation ranking check: each kind is applied to the whole photo before detection (as a "
                    "camera produces it); prints, per kind, the fraction of faces whose clean crop outscores it.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="face photos (default: the held-out half of "
                   "../shared celeba_ids, else the insightface wheel's photos)")
    p.add_argument("--split", default="test", choices=("test", "train", "all"),
                   help="identity half of the default set (default: test, held out from training)")
    p.add_argument("--max-photos", type=int, default=400, help="at most this many photos (0 = all)")
    _add_scorer_options(p, "fiqa_fast")
    args = p.parse_args(argv)
    _setup_logging(args.log_level)
    import numpy as np

    from streamfiqa.eval.degrade import PHOTO_KINDS
    from streamfiqa.eval.facedata import celeba_ids_dir, load_crops, read_identities
    from streamfiqa.quality.scorers import create_scorer
    from streamfiqa.eval.synth import default_face_paths
    from streamfiqa.io.media import image_files

    if args.paths:
        paths = [str(f) for f in image_files(args.paths)]
    elif celeba_ids_dir().is_dir():
        paths = read_identities(celeba_ids_dir()).split(args.split).paths
    else:
        paths = [str(f) for f in image_files(default_face_paths())]
    paths = paths[: args.max_photos] if args.max_photos else paths
    scorer = create_scorer(args.scorer, **_scorer_args(args.arg))
    clean = load_crops(paths)
    keep = clean.found
    base = np.asarray(scorer.score(clean.aligned[keep]), np.float64)
    table = {}
    for kind in PHOTO_KINDS:
        deg = load_crops([q for q, k in zip(paths, keep) if k], protocol=kind)
        table[kind] = round(float(np.mean(base > np.asarray(scorer.score(deg.aligned), np.float64))), 4)
    print(json.dumps({"scorer": args.scorer, "faces": int(keep.sum()), "clean_above_degraded": table,
                      "bar_0.95_met": all(v >= 0.95 for v in table.values())}))
    return 0


def cmd_eval(argv: list[str]) -> int:
    from streamfiqa.eval.facedata import celeba_ids_dir

    p = argparse.ArgumentParser(
        prog="streamfiqa eval",
        description="EDC and pAUC (normalised to random discard) of scorers × FR models × protocols on an "
                    "identity-labelled folder; writes OUT/edc.json, OUT/edc.png and OUT/calibration.json.")
    p.add_argument("--ids", default=str(celeba_ids_dir()), help="identity folder: identities.csv or a sub-folder "
                   "per person (default: ../shared celeba_ids)")
    p.add_argument("--split", default="test", choices=("test", "train", "all"),
                   help="identity half to evaluate (default: test, the half distil does not train on)")
    p.add_argument("--protocol", action="append", default=None,
                   help="clean, mixed (half the photos degraded before detection, random kind and strength), or "
                        "one kind (blur, downscale, noise, jpeg, dark, occlusion); repeatable (default: clean, mixed)")
    p.add_argument("--fr", action="append", default=None, metavar="NAME[:key=value;...]",
                   help="recogniser(s) for the comparison scores (default: mobilefacenet (../shared), facenet)")
    p.add_argument("--fmr", type=float, default=1e-3)
    p.add_argument("--impostors", type=int, default=50_000, help="seeded impostor pairs")
    p.add_argument("--max-photos", type=int, default=0, help="evaluate on the first N photos only (0 = all)")
    p.add_argument("--calibrate-discard", type=float, default=0.1,
                   help="calibration: the threshold reaching the best FNMR within this discard fraction")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="eval_out", help="output folder")
    p.add_argument("--scorer", action="append", default=None, metavar="NAME[:key=value;...]",
                   help="scorer(s) (default: fiqa_fast, fiqa_heavy, crop_iqa, grafiqs:fr=mobilefacenet)")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    args = p.parse_args(argv)
    _setup_logging(args.log_level)
    from streamfiqa.eval.edc import identity_eval, plot_edc

    frs = args.fr or ["mobilefacenet", "facenet"]
    scorers = args.scorer or ["fiqa_fast", "fiqa_heavy", "crop_iqa", "grafiqs:fr=mobilefacenet"]
    result = identity_eval(args.ids, args.split, args.protocol or ["clean", "mixed"], frs, scorers, args.fmr,
                           args.impostors, args.seed, args.max_photos, args.calibrate_discard,
                           progress=sys.stderr.isatty())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for row in result["rows"]:
        print(json.dumps(row))
    (out / "edc.json").write_text(json.dumps(result, indent=1))
    (out / "calibration.json").write_text(json.dumps({"meta": result["meta"], "calibration": result["calibration"]},
                                                     indent=1))
    first = {k.rsplit("/", 1)[1]: v for k, v in result["curves"].items() if k.startswith(result["rows"][0]["protocol"]
                                                                                          + "/" + result["rows"][0]["fr"] + "/")}
    plot_edc(first, out / "edc.png", title=f"{result['rows'][0]['protocol']} / {result['rows'][0]['fr']}")
    print(json.dumps({**result["meta"], "json": str(out / "edc.json"), "calibration": str(out / "calibration.json")}))
    return 0


def cmd_distil(argv: list[str]) -> int:
    from streamfiqa.eval.facedata import celeba_ids_dir, shared_mobilefacenet

    p = argparse.ArgumentParser(
        prog="streamfiqa distil",
        description="Train a fast quality student (FR backbone + MLP head) to regress FR-utility labels or a "
                    "teacher scorer, on identity folders, image folders or videos; writes OUT/student.pt and "
                    "OUT/student.onnx (use with --set quality.scorer=student --set quality.scorer_args.weights=…).")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="identity folder, image folders or videos (default: ../shared celeba_ids)")
    p.add_argument("--out", required=True, help="output folder (checkpoints, ONNX, summary.json)")
    p.add_argument("--arch", default="mfn80", help="mfn80 (CPU fast tier), mfn112, iresnet18 (eDifFIQA(S) layout)")
    p.add_argument("--labels", default="utility", help="utility (identity folders), consistency, or scorer:NAME")
    p.add_argument("--teacher-fr", default="mobilefacenet", help="FR model for labels and the embedding loss")
    p.add_argument("--teacher-fr-arg", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--init", default=None, help="FR weights to start the backbone from (default: the teacher's "
                   "MobileFaceNet for mfn* archs when it is in ../shared)")
    p.add_argument("--variants", type=int, default=4, help="degraded copies per photo")
    p.add_argument("--margin", type=float, default=0.3, help="utility labels: a degraded copy scores at least "
                   "margin × strength below its clean original")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--split", default="train", choices=("train", "test", "all"), help="identity half to train on")
    p.add_argument("--max-photos", type=int, default=0)
    p.add_argument("--every", type=int, default=10, help="videos: one frame in this many")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    _add_scorer_options(p, "")
    args = p.parse_args(argv)
    _setup_logging(args.log_level if args.log_level != "warning" else "info")
    from streamfiqa.train.distil import DistilConfig, distil

    fr_args = _scorer_args(args.teacher_fr_arg)
    if args.teacher_fr == "mobilefacenet" and "weights" not in fr_args:
        fr_args["weights"] = str(shared_mobilefacenet())
    init = args.init
    if init is None and args.arch.startswith("mfn") and args.teacher_fr == "mobilefacenet":
        init = fr_args["weights"]
    cfg = DistilConfig(arch=args.arch, labels=args.labels, teacher_fr=args.teacher_fr, teacher_fr_args=fr_args,
                       init=init, variants=args.variants, margin=args.margin, epochs=args.epochs,
                       batch_size=args.batch_size, lr=args.lr,
                       split=args.split, seed=args.seed, max_photos=args.max_photos, every=args.every)
    summary = distil(args.inputs or [str(celeba_ids_dir())], args.out, cfg, resume=args.resume,
                     progress=sys.stderr.isatty(), scorer_args=_scorer_args(args.arg))
    print(json.dumps(summary))
    return 0


def cmd_quantize(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="streamfiqa quantize",
        description="Quantise a quality student to INT8 for the CPU (ONNX Runtime, calibrated on real aligned faces, "
                    "clean and degraded); use it with --set quality.scorer_args.precision=int8.")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--weights", help="a distil checkpoint (student.pt)")
    who.add_argument("--student", default="fiqa_fast", help="an embedded student: fiqa_fast (default), fiqa_heavy")
    p.add_argument("--calibration", default=None, help="identity folder to calibrate on (default: ../shared "
                   "celeba_ids)")
    p.add_argument("--split", default="train", choices=("train", "test", "all"),
                   help="identity half to calibrate on (default: train, the half distil trains on)")
    p.add_argument("--photos", type=int, default=400, help="calibration photos: half clean, half degraded")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="INT8 .onnx to write (default: beside the checkpoint, "
                   "<stem>.int8.onnx, where precision int8 looks for it)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    args = p.parse_args(argv)
    _setup_logging(args.log_level)
    from streamfiqa.train.quantize import calibration_crops, quantize_student
    from streamfiqa.models.student import embedded_path

    weights = Path(args.weights) if args.weights else embedded_path(args.student)
    if not weights.is_file():
        raise FileNotFoundError(f"quantize: expected --weights to name a distil checkpoint, found nothing at {weights}")
    crops = calibration_crops(args.calibration, args.photos, args.split, args.seed)
    what = (f"{args.calibration or 'celeba_ids'} {args.split} half (seed {args.seed}): first {args.photos} photos, "
            f"half clean, half mixed (seed {args.seed + 1})")
    out = quantize_student(weights, crops, args.out, calibration=what)
    print(json.dumps({"weights": str(weights), "int8": str(out), "calibration": what}))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        cmds = {"listen": cmd_listen, "demo": cmd_demo, "score": cmd_score, "models": cmd_models,
                "degrade": cmd_degrade, "eval": cmd_eval, "distil": cmd_distil, "quantize": cmd_quantize,
                "keys": cmd_keys}
        try:
            return cmds[argv[0]](argv[1:])
        except (ValueError, OSError) as exc:  # a user's input (path, model, argument): one line, exit 2
            logging.getLogger("streamfiqa").error("%s", exc)
            return 2
    return cmd_run(argv)


if __name__ == "__main__":
    sys.exit(main())
