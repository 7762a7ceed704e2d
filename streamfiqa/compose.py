"""Shared wiring for the pipelines: sinks from config, and the run itself."""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from streamfiqa.config import Config
from streamfiqa.publish import ContactSheet, FileSink, ZmqPublisher
from streamfiqa.runner import Runner
from streamfiqa.sources import parse_sources

log = logging.getLogger(__name__)


def build_sinks(cfg: Config) -> list:
    """The sinks the config asks for: ZeroMQ, a file directory, a contact sheet."""
    sinks = []
    if cfg.publish.endpoint:
        sinks.append(ZmqPublisher(cfg.publish))
    if cfg.output.dir:
        sinks.append(FileSink(cfg.output, cfg.publish.jpeg_quality))
        if cfg.output.contact_sheet:
            sinks.append(ContactSheet(Path(cfg.output.dir) / "contact_sheet.png"))
    if not sinks:
        log.warning("no sink configured (--publish / --out): events are only logged")
        sinks.append(LogSink())
    return sinks


class LogSink:
    """Logs each event's topic and score (used when no other sink is configured)."""

    def emit(self, event) -> None:
        score = event.candidate.score if event.candidate is not None else float("nan")
        log.info("%s track %s score %.4f", event.topic, event.track_id, score)

    def close(self) -> None:
        pass


def run(sources: list[str], cfg: Config, stop: threading.Event | None = None) -> int:
    """Open ``sources``, run the pipeline of ``cfg`` and return its exit code."""
    specs = parse_sources(sources, cfg.sources.live)
    runner = Runner(cfg, specs, build_sinks(cfg))
    return runner.run(stop)
