"""Shared wiring for the pipelines: sinks from config, and the run itself."""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from streamfiqa.config import Config
from streamfiqa.io.sinks import ContactSheet, FileSink, ZmqPublisher
from streamfiqa.pipeline.runner import Runner
from streamfiqa.io.sources import parse_sources

log = logging.getLogger(__name__)


def build_sinks(cfg: Config) -> list:
    """The sinks the config asks for: ZeroMQ, a file directory, a contact sheet."""
    sinks = []
    if cfg.output.dir:  # before the publisher: a refused folder must not leave a port bound
        sinks.append(FileSink(cfg.output, cfg.publish.jpeg_quality, cfg.publish.embedding))
        if cfg.output.contact_sheet:
            sinks.append(ContactSheet(Path(cfg.output.dir) / "contact_sheet.png"))
    if cfg.publish.endpoint:
        try:
            sinks.append(ZmqPublisher(cfg.publish))
        except BaseException:
            for sink in sinks:
                sink.close()
            raise
    if not sinks:
        log.warning("no sink configured (--publish / --out): events are only logged")
        sinks.append(LogSink())
    if cfg.persons.enabled:
        from streamfiqa.pipeline.persons import PersonMerger, embedding_model
        from streamfiqa.quality.calibration import person_threshold

        try:
            sinks = [PersonMerger(sinks, person_threshold(cfg.persons, embedding_model(cfg)), cfg.persons.window_s)]
        except BaseException:
            for sink in sinks:
                sink.close()
            raise
    return sinks


class LogSink:
    """Logs each event's topic and score (used when no other sink is configured)."""

    def emit(self, event) -> None:
        score = event.candidate.score if event.candidate is not None else float("nan")
        log.info("%s track %s score %.4f", event.topic, event.track_id, score)

    def close(self) -> None:
        pass


def build(sources: list[str], cfg: Config) -> Runner:
    """The runner of ``cfg`` over ``sources`` (sinks included); a missing path among others becomes a source
    that fails on its own.

    Raises:
        FileNotFoundError: no source exists at all.
        ValueError, OSError: a model, endpoint or output directory the config names cannot be used.
    """
    specs = parse_sources(sources, cfg.sources.live, strict=False)
    if all(s.kind == "missing" for s in specs):
        parse_sources(sources[:1], cfg.sources.live)  # raises the first path's error
    sinks = build_sinks(cfg)
    try:
        return Runner(cfg, specs, sinks)
    except BaseException:
        for sink in sinks:
            sink.close()
        raise


def run(sources: list[str], cfg: Config, stop: threading.Event | None = None) -> int:
    """Open ``sources``, run the pipeline of ``cfg`` and return its exit code."""
    return build(sources, cfg).run(stop)
