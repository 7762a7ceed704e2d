#!/usr/bin/env python3
"""streamfiqa command line: run a pipeline on sources, listen to events, or make a demo clip.

    python run_stream.py SOURCE... [--pipeline cctv|enroll|offline] [--config FILE] [--out DIR]
                                   [--publish ENDPOINT] [--set key=value]...
    python run_stream.py listen ENDPOINT [--save DIR] [--count N]
    python run_stream.py demo [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

COMMANDS = ("listen", "demo")
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
        epilog="Other commands: 'run_stream.py listen ENDPOINT --help', 'run_stream.py demo --help'. "
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return {"listen": cmd_listen, "demo": cmd_demo}[argv[0]](argv[1:])
    return cmd_run(argv)


if __name__ == "__main__":
    sys.exit(main())
