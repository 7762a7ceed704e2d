"""Everything a run needs, built from config: the stages, the sinks, the runner (the pipelines call :func:`run`)."""
from __future__ import annotations

import logging
import os
import platform
import threading
from pathlib import Path

from streamfiqa.align import Aligner
from streamfiqa.config import Config
from streamfiqa.detect import detector_from_config
from streamfiqa.detect.regions import RegionDetector
from streamfiqa.io.metrics import Metrics
from streamfiqa.io.sinks import ContactSheet, FileSink, LogSink, ZmqPublisher
from streamfiqa.io.specs import SourceSpec, parse_sources, readable
from streamfiqa.pipeline.embed import (TRACKER_WORDS, appearance_off, embedding_name, event_embedder,
                                       face_embedder, utility_scorer)
from streamfiqa.pipeline.per_source import selection_plugins
from streamfiqa.pipeline.persons import embedding_model, PersonMerger
from streamfiqa.pipeline.rescore import HeavyTier
from streamfiqa.pipeline.runner import Runner
from streamfiqa.pipeline.stages import Stages
from streamfiqa.quality import calibration
from streamfiqa.quality.calibration import person_threshold
from streamfiqa.quality.scorers import SCORERS, create_scorer
from streamfiqa.quality.tier0 import QualityAssessor

log = logging.getLogger(__name__)
#: glibc's ``M_ARENA_MAX`` (mallopt): how many malloc arenas the process's threads share.
_M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def fewer_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Let the threads of this process share ``arenas`` malloc arenas (glibc only; a ``MALLOC_ARENA_MAX`` the user
    set wins). By default glibc gives threads up to 8 arenas per core, and a thread that frees the frames another
    allocated leaves its arena fragmented: on 2 cores, 3 live 1080p cameras held 1.4–1.6 GB with the default and
    0.85 GB with 2 arenas, at the same frame rate and CPU (``python -m bench --cameras``). Returns whether it was
    set."""
    if os.environ.get("MALLOC_ARENA_MAX") or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    import ctypes

    try:
        return bool(ctypes.CDLL(None).mallopt(_M_ARENA_MAX, int(arenas)))
    except (OSError, AttributeError):
        return False


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
        try:
            sinks = [PersonMerger(sinks, person_threshold(cfg.persons, embedding_model(cfg)), cfg.persons.window_s)]
        except BaseException:
            for sink in sinks:
                sink.close()
            raise
    return sinks


def check_plugins(cfg: Config) -> None:
    """Refuse an unknown scorer, FR model or face check named by ``cfg``, or an argument it does not take, before
    any model loads or any sink opens: a mistyped name fails in a second and leaves nothing behind."""
    q = cfg.quality
    for name, args in ((q.scorer, q.scorer_args), (q.heavy, q.heavy_args)):
        if name:
            SCORERS.check(name, **args)
    selection_plugins(cfg)
    from streamfiqa.models.fr import FR_MODELS

    t, p = cfg.tracker, cfg.publish
    for key, name, args, words in (("tracker.appearance", t.appearance, t.appearance_args, TRACKER_WORDS),
                                   ("publish.embedding_fr", p.embedding_fr, p.embedding_fr_args, ("auto",))):
        if name not in words:  # a word is no FR model's name: what the tracker or the publisher decides itself
            FR_MODELS.check_config(key, name, args)


def build_stages(cfg: Config) -> Stages:
    """The detector, aligner, quality stages, scorers, embedders and heavy tier that ``cfg`` asks for.

    Raises:
        ValueError, OSError: a model the config names cannot be built (unknown name, missing weights).
    """

    d, q = cfg.detector, cfg.quality
    check_plugins(cfg)
    detector = detector_from_config(d)
    scorer = create_scorer(q.scorer, **q.scorer_args) if q.scorer else None
    embedder = face_embedder(cfg, scorer)
    heavy = None
    if q.heavy:
        heavy = HeavyTier(create_scorer(q.heavy, **q.heavy_args), q.keyframes)
        if cfg.selection.rank == "typical":  # its keyframes are the fast tier's picks; typicality ranks without them
            log.warning("quality.heavy=%s scores keyframes, but selection.rank=typical ranks each track's faces by "
                        "typicality: the heavy scores decide nothing and cost CPU (on the real clips the heavy tier "
                        "brought no gain; README). selection.rank=fast ranks by them; quality.heavy=null saves them",
                        q.heavy)
    return Stages(
        detector, Aligner(cfg.align.display_margin, cfg.align.display_size),
        QualityAssessor(q.min_inter_eye, q.max_yaw, q.max_pitch, q.max_roll, q.min_det_score, q.min_sharpness,
                        q.max_clipped, q.min_in_frame),
        scorer, calibration.min_score(q), embedder, embedding_name(embedder, scorer), event_embedder(cfg, embedder),
        heavy, RegionDetector(detector, d.full_every, d.window) if d.full_every > 1 else None,
        appearance=not appearance_off(cfg), utility=utility_scorer(cfg, scorer, embedder))


def build_runner(cfg: Config, specs: list[SourceSpec], sinks: list) -> Runner:
    """A runner of ``cfg`` over ``specs`` into ``sinks`` (with its metrics endpoint when ``metrics.port`` is set)."""
    fewer_malloc_arenas()  # before the models' and the sources' threads start
    runner = Runner(cfg, specs, sinks, build_stages(cfg))
    _, look = selection_plugins(cfg)
    if look is not None and any(spec.live for spec in specs):
        # live cameras: the second look's model loads now (and is made, the first time on a machine: 2–3 s of a core
        # for FaceNet's export, 11 s for its INT8 copy), not at the first track's end, where that CPU would lag every
        # camera; files keep it lazy
        look.prepare()
    if cfg.metrics.port is not None:
        runner.metrics = Metrics(runner.stats, cfg.metrics.port, cfg.metrics.address)
    return runner


def build(sources: list[str], cfg: Config) -> Runner:
    """The runner of ``cfg`` over ``sources`` (sinks included); a missing path among others becomes a source
    that fails on its own.

    Raises:
        ValueError: no source can be read at all.
        ValueError, OSError: a model, endpoint or output directory the config names cannot be used.
    """
    specs = readable(parse_sources(sources, cfg.sources.live, strict=False))
    check_plugins(cfg)
    sinks = build_sinks(cfg)
    try:
        return build_runner(cfg, specs, sinks)
    except BaseException:
        for sink in sinks:
            sink.close()
        raise


def run(sources: list[str], cfg: Config, stop: threading.Event | None = None) -> int:
    """Open ``sources``, run the pipeline of ``cfg`` and return its exit code."""
    return build(sources, cfg).run(stop)
