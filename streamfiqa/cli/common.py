"""What the commands share: logging, signals, scorer options."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

log = logging.getLogger("streamfiqa")


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def stop_on_signals() -> threading.Event:
    """SIGTERM / SIGINT set the returned event (a clean stop: active tracks are flushed); a second one exits now."""
    stop = threading.Event()

    def handler(signum, _frame):
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("received %s again: exiting without flushing", name)
            raise SystemExit(128 + signum)
        log.info("received %s: flushing active tracks and stopping", name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def scorer_args(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--arg: expected key=value, found {item!r}")
        out[key.strip()] = yaml.safe_load(raw)
    return out


def add_scorer_options(p: argparse.ArgumentParser, default: str, many: bool = False) -> None:
    p.add_argument("--scorer", default=None if many else default, action="append" if many else "store",
                   help=f"scorer name (see 'streamfiqa models'; default {default})")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="scorer argument, e.g. weights=ediffiqaS.pth, point=block2 (applies to every --scorer)")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
