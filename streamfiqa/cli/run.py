"""``streamfiqa SOURCE...``: run a pipeline; ``streamfiqa demo``: make a demo clip and run it."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from streamfiqa.cli.common import ignore_signals, setup_logging, stop_on_signals
from streamfiqa.config import PIPELINES

log = logging.getLogger("streamfiqa")


def run_parser(commands: list[str]) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="streamfiqa", description="Best-quality face crops from video streams and files.",
        epilog=f"Other commands (each with --help): {', '.join(commands)}. "
               "SOURCE is a video file, an image folder, rtsp://..., http(s)://... (HLS too), udp://, rtp://, "
               "tcp://, rtmp:// or srt:// (MPEG-TS, as encoders send it) or /dev/videoN; "
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


def cmd_run(argv: list[str], commands: list[str] = ()) -> int:
    """Run a pipeline over sources (``commands``: the other subcommands, named in ``--help``)."""
    args = run_parser(list(commands)).parse_args(argv)
    setup_logging(args.log_level)
    stop = stop_on_signals()  # before the models load: a signal while they do stops the run cleanly once built
    from pipelines import PIPELINES as JOURNEYS
    from streamfiqa.config import ConfigError, load_config, read_yaml
    from streamfiqa.io.specs import parse_sources, readable

    name = args.pipeline
    try:
        in_file = read_yaml(args.config).get("pipeline") if args.config else None
        if name is None:
            name = in_file
        elif in_file is not None and in_file != name:
            # the command line wins, but the file's other keys were chosen for its own journey: say so
            log.warning("--pipeline %s overrides %s's 'pipeline: %s'; the file's other values still apply over the "
                        "%s defaults", name, args.config, in_file, name)
        if name is None:
            # sources.live as the file and --set give it (--set sources.live=false reads an http(s) file as a file)
            live_setting = load_config(args.config, args.overrides).sources.live
            live = any(s.live for s in parse_sources(args.sources, live_setting, strict=False))
            name = "cctv" if live else "offline"
        if name not in JOURNEYS:
            raise ConfigError(f"pipeline: expected one of {', '.join(JOURNEYS)}, found {name!r}")
        overrides = list(args.overrides) + [f"pipeline={name}"]
        if args.out:
            overrides.append(f"output.dir={args.out}")
        if args.publish:
            overrides.append(f"publish.endpoint={args.publish}")
        if args.workers is not None:
            overrides.append(f"fleet.workers={args.workers}")
        cfg = load_config(args.config, overrides, base=JOURNEYS[name].DEFAULTS)
        from streamfiqa.pipeline import build

        if cfg.fleet.workers:
            from streamfiqa.cluster.fleet import Fleet

            try:
                import ray  # noqa: F401
            except ImportError:
                raise ConfigError("fleet.workers: expected Ray to be installed (pip install 'streamfiqa[ray]'), "
                                  "found no 'ray' module") from None
            readable(parse_sources(args.sources, cfg.sources.live, strict=False))
            runner = Fleet(cfg, args.sources)  # sinks and endpoint are checked here, before Ray starts
        else:
            runner = build.build(args.sources, cfg)  # models, sinks, endpoint: a user's mistake fails here
    except (ConfigError, ValueError, OSError) as exc:  # FileNotFoundError is an OSError
        log.error("%s", exc)
        return 2
    rc = runner.run(stop)
    if stop.is_set():  # stopped by a signal: the rest of that request may still come while the process exits
        ignore_signals()
    return rc


def cmd_demo(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="streamfiqa demo",
        description="Make a demo clip from the face photo in the insightface wheel and run the offline pipeline.")
    p.add_argument("--out", default="demo_out", metavar="DIR", help="output directory (default: demo_out)")
    p.add_argument("--faces", type=int, default=4, help="faces in the clip (at most 6)")
    p.add_argument("--frames", type=int, default=100, help="clip length in frames")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    if not 1 <= args.faces <= 6 or args.frames < 10:
        log.error("demo: expected 1 to 6 --faces and at least 10 --frames (a face needs a few frames to become a "
                  "track), found %d and %d", args.faces, args.frames)
        return 2
    from streamfiqa.eval.synth import make_clip

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        log.error("demo --out %s: expected a directory, found a file", out)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    clip = out / "demo.mp4"
    truth = make_clip(clip, faces=args.faces, frames=args.frames)
    log.info("wrote %s (sharp frame of each face: %s)", clip, truth.sharp_frame)
    (out / "demo_truth.json").write_text(json.dumps({"sharp_frame": truth.sharp_frame}))
    return cmd_run([str(clip), "--pipeline", "offline", "--out", str(out), "--log-level", args.log_level,
                    "--set", "output.overwrite=true"])  # the demo owns its folder: a re-run replaces it
