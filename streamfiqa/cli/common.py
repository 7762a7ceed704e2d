"""What the commands share: logging, signals, scorer options."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time

log = logging.getLogger("streamfiqa")


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


#: A second signal this soon after the first is the same request: ``timeout``, and any sender that signals both a
#: process and its process group, delivers SIGTERM twice within a millisecond or so.
SAME_REQUEST_S = 1.0


def stop_on_signals() -> threading.Event:
    """SIGTERM / SIGINT (and SIGHUP, unless ignored as under nohup) set the returned event (a clean stop: active
    tracks are flushed); another one at least ``SAME_REQUEST_S`` later exits at once, without flushing."""
    stop = threading.Event()
    first: list[float] = []

    def handler(signum, _frame):
        name = signal.Signals(signum).name
        now = time.monotonic()
        if first and now - first[0] < SAME_REQUEST_S:
            log.info("received %s again %.3f s later: the same request (the clean stop goes on)", name,
                     now - first[0])
            return
        if first:
            log.warning("received %s again: exiting without flushing", name)
            raise SystemExit(128 + signum)
        first.append(now)
        log.info("received %s: flushing active tracks and stopping", name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    hangup = getattr(signal, "SIGHUP", None)  # a closed terminal or SSH session (POSIX)
    if hangup is not None and signal.getsignal(hangup) is signal.SIG_DFL:  # under nohup it stays ignored
        signal.signal(hangup, handler)
    return stop


def ignore_signals() -> None:
    """A run stopped by a signal is done and flushed: what comes of the same request while the interpreter exits (its
    second signal, say) is ignored, where it would otherwise kill the process and a process manager read a crash."""
    for name in ("SIGTERM", "SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def at_least(lo: int):
    """An argparse ``type``: an integer no smaller than ``lo`` (else argparse's one line and exit 2)."""

    def parse(text: str) -> int:
        value = int(text)  # not an integer: argparse says "invalid integer >= N value"
        if value < lo:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, found {value}")
        return value

    parse.__name__ = f"integer >= {lo}"
    return parse


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
