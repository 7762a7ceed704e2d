"""Tools: ``listen``, ``keys``, ``score``, ``models``."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from streamfiqa.cli.common import add_scorer_options, at_least, scorer_args, setup_logging, stop_on_signals

log = logging.getLogger("streamfiqa")


def cmd_listen(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="streamfiqa listen", description="Print events received over ZeroMQ.")
    p.add_argument("endpoint", help="publisher endpoint, e.g. tcp://127.0.0.1:5556")
    p.add_argument("--save", metavar="DIR", help="save DIR/events.jsonl and the crops")
    p.add_argument("--count", type=at_least(0), default=0, help="exit after N events (default: never)")
    p.add_argument("--timeout", type=float, default=0.0, help="exit after this many seconds without an event")
    p.add_argument("--pull", action="store_true", help="PULL from a PUSH publisher instead of SUB")
    p.add_argument("--curve-server-key", metavar="FILE", help="the publisher's CURVE public key (.key): CURVE on")
    p.add_argument("--curve-key", metavar="FILE", help="this subscriber's CURVE key pair (.key_secret); "
                   "default: an ephemeral one (enough when the publisher allows any CURVE client)")
    p.add_argument("--max-bytes", type=at_least(1), default=16 * 1024 * 1024,
                   help="largest message accepted (ZeroMQ MAXMSGSIZE; a larger one drops its sender's connection)")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    from streamfiqa.io.listen import SaveFailed, listen

    stats: dict = {}
    try:
        n = listen(args.endpoint, args.save, args.count, args.timeout, pull=args.pull, stop=stop_on_signals(),
                   server_key=args.curve_server_key, secret_key=args.curve_key, stats=stats, max_bytes=args.max_bytes)
    except SaveFailed as exc:  # not the user's mistake: the run went wrong
        log.error("%s", exc)
        return 1
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    if stats.get("bad"):
        log.warning("skipped %d malformed messages", stats["bad"])
    if args.count and n < args.count:
        log.error("received %d of the %d events asked for", n, args.count)
        return 1
    return 0


def cmd_keys(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="streamfiqa keys",
                                description="Make a ZeroMQ CURVE key pair: DIR/NAME.key (public, give it to the "
                                            "other side) and DIR/NAME.key_secret (keep it private).")
    p.add_argument("dir", help="folder to write the keys into")
    p.add_argument("--name", default="streamfiqa", help="file stem (default: streamfiqa)")
    args = p.parse_args(argv)
    import zmq.auth

    folder = Path(args.dir)
    if folder.exists() and not folder.is_dir():
        print(f"streamfiqa keys: expected a folder to write keys into at {folder}, found a file", file=sys.stderr)
        return 2
    if (folder / f"{args.name}.key_secret").exists():
        print(f"streamfiqa keys: {folder / args.name}.key_secret exists; choose another --name or folder",
              file=sys.stderr)
        return 2
    mask = os.umask(0o077)  # the secret key is never readable by others, not even between its writing and a chmod
    try:
        folder.mkdir(parents=True, exist_ok=True)
        public, secret = zmq.auth.create_certificates(str(folder), args.name)
    except OSError as exc:
        print(f"streamfiqa keys: expected a folder this user can write keys into at {folder}, found that it cannot "
              f"be ({exc.strerror or exc})", file=sys.stderr)
        return 2
    finally:
        os.umask(mask)
    Path(public).chmod(0o644)  # the public half is there to be handed out
    print(json.dumps({"public": public, "secret": secret}))
    return 0


def cmd_score(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="streamfiqa score",
                                description="Score face images; one JSON line per face on stdout.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (walked recursively)")
    p.add_argument("--aligned", action="store_true", help="images are aligned 112×112 crops (no detection)")
    add_scorer_options(p, "fiqa_fast")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    from streamfiqa.io.media import IMAGE_EXTENSIONS, image_files
    from streamfiqa.photos import load_faces, score_faces

    try:
        if not image_files(args.paths):
            raise ValueError(f"score: expected image files ({', '.join(IMAGE_EXTENSIONS)}) in {' '.join(args.paths)}, "
                             "found none")
        faces = load_faces(args.paths, aligned=args.aligned, detector="retinaface")
        scores = score_faces(faces, args.scorer, scorer_args(args.arg))
    except (ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    for path, face, s in zip(faces.paths, faces.faces, scores):
        print(json.dumps({"path": path, "face": face, "scorer": args.scorer, "score": float(s)}))
    return 0


def cmd_models(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="streamfiqa models",
                                description="List scorers, FR models and detectors: whether their weights are "
                                            "present, their licence and what they derive from.")
    p.add_argument("--config", metavar="FILE", help="YAML config whose quality.scorer/heavy args name weights")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    args = p.parse_args(argv)
    from streamfiqa.config import load_config
    from streamfiqa.quality.scorers import model_table

    configured = {}
    if args.config:
        q = load_config(args.config).quality
        configured = {q.scorer: q.scorer_args, q.heavy: q.heavy_args}
    from streamfiqa.eval.facedata import shared_dir

    mfn = shared_dir() / "models" / "mobilefacenet"  # the development data's, which eval uses when present
    rows = model_table(configured, {"mobilefacenet": mfn / "mobilefacenet_ms1m_arcface.pt",
                                    "mobilefacenet_onnx": mfn / "mobilefacenet_ms1m_arcface.onnx"})
    for r in rows:
        if args.json:
            print(json.dumps(r))
        else:
            print(f"{r['kind']:8} {r['name']:18} {'yes' if r['available'] else 'no ':3}  {r['weights']}\n"
                  f"{'':32}licence: {r['licence']}; from: {r['derives_from']}")
    return 0
