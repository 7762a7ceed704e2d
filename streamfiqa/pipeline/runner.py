"""The frame loop: sources → detect → align → quality → track → select → sinks."""
from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from streamfiqa.align import Aligner
from streamfiqa.config import Config
from streamfiqa.detect import detector_from_config
from streamfiqa.detect.regions import RegionDetector
from streamfiqa.events import Candidate, Event
from streamfiqa.quality import calibration
from streamfiqa.quality.tier0 import QualityAssessor
from streamfiqa.quality.scorers import create_scorer
from streamfiqa.pipeline.rescore import HeavyWorker, Job, KeyframeSampler
from streamfiqa.pipeline.best_crop import BestSelector, EnrollSelector
from streamfiqa.io.sources import Source, SourceSpec
from streamfiqa.track.tracker import Tracker, TrackState
from streamfiqa.types import Frame

log = logging.getLogger(__name__)
STAGES = ("detect", "align", "quality", "score", "track", "select")
#: A source whose frames jump more than this (a reconnect, frames dropped to catch up) is detected in full
#: again: its faces' last places no longer say where to look (``detector.full_every``).
REGION_GAP_S = 0.5


@dataclass
class _SourceState:
    index: int  # position in Runner.states (heavy-tier jobs refer to their source by it)
    source: Source
    tracker: Tracker
    selector: BestSelector
    enroll: EnrollSelector | None = None
    first_pts: float | None = None
    processed: int = 0
    faces: int = 0
    events: int = 0
    done: bool = False
    by_kind: dict = field(default_factory=dict)
    lag: float = 0.0      # live: now − estimated capture time of the newest processed frame (s)
    max_lag: float = 0.0
    last_pts: float = 0.0  # stream time of the newest processed frame
    detected_pts: float | None = None  # stream time of the newest detected frame (the detection stage's own)
    pending_end: dict = field(default_factory=dict)  # track id → [Track, end keyframes still out]
    progress: object = None
    window: list = field(default_factory=lambda: [0, 0, time.perf_counter()])  # frames, faces, t0


class Runner:
    """Runs one pipeline over several sources in the calling thread.

    Decoding happens in one thread per source and publishing in the publisher's thread;
    everything else runs here, round-robin over the sources that have a frame ready.

    Args:
        cfg: the run's configuration.
        specs: sources to open.
        sinks: objects with ``emit(event)`` and ``close()``.
    """

    def __init__(self, cfg: Config, specs: list[SourceSpec], sinks: list) -> None:
        if not specs:
            raise ValueError("expected at least one source, found none")
        self.cfg, self.specs, self.sinks = cfg, specs, sinks
        self.detector = detector_from_config(cfg.detector)
        d = cfg.detector
        self.regions = RegionDetector(self.detector, d.full_every, d.window) if d.full_every > 1 else None
        self.aligner = Aligner(cfg.align.display_margin, cfg.align.display_size)
        q = cfg.quality
        self.assessor = QualityAssessor(q.min_inter_eye, q.max_yaw, q.max_pitch, q.max_roll, q.min_det_score,
                                        q.min_sharpness, q.max_clipped)
        self.scorer = create_scorer(q.scorer, **q.scorer_args) if q.scorer else None
        self.min_score = calibration.min_score(q)
        self.embedder = self._embedder(cfg.tracker)
        if self.embedder == "scorer":
            self._embedding_model = f"student:{self.scorer.name}"
        else:
            self._embedding_model = getattr(self.embedder, "name", "")
        self.event_fr = self._event_fr(cfg)
        self.heavy = None
        if q.heavy:
            k = q.keyframes
            self.heavy = HeavyWorker(create_scorer(q.heavy, **q.heavy_args), k.queue_size, threads=k.threads)
            self.sampler = KeyframeSampler(k.top_k, k.period_s, k.at_end, k.max_per_track)
        self.wake = threading.Event()
        self.stage_s = dict.fromkeys(STAGES, 0.0)
        self.states: list[_SourceState] = []
        self.exit_code = 0
        self.metrics = None
        if cfg.metrics.port is not None:
            from streamfiqa.io.metrics import Metrics

            self.metrics = Metrics(self.stats, cfg.metrics.port, cfg.metrics.address)
        #: Callables ``(source_id, frame, faces, assignments, confirmed_ids)`` told of every tracker step
        #: (evaluation harnesses, debugging overlays).
        self.observers: list = []
        #: Callables ``(runner)`` called once per loop turn in the runner's own thread (where the selectors
        #: may be read safely: :meth:`open_bests`).
        self.tickers: list = []
        #: First track id of each source (by index); a source resumed elsewhere continues above its old ids.
        self.first_track_ids: dict[int, int] = {}

    def _embedder(self, t):
        """What gives the tracker its FR embeddings: the fast scorer itself when it has an FR backbone
        (``score_and_embed``: no extra pass), a named FR model, or nothing (geometry alone)."""
        if t.appearance in ("off", "false", "none"):  # YAML reads a bare off as false
            return None
        if t.appearance == "auto":
            if self.scorer is not None and hasattr(self.scorer, "score_and_embed"):
                return "scorer"
            log.info("tracker: the fast scorer has no FR backbone; tracking by geometry alone "
                     "(set tracker.appearance to an FR model name to add appearance)")
            return None
        from streamfiqa.models.fr import create_fr

        return create_fr(t.appearance, **t.appearance_args)

    def _event_fr(self, cfg: Config):
        """The FR model that embeds the crops of published events (``publish.embedding`` or the
        cross-camera merge need them): None when neither is on, ``"tracker"`` for the tracker's own."""
        from streamfiqa.config import ConfigError

        if not (cfg.publish.embedding or cfg.persons.enabled):
            return None
        if cfg.publish.embedding_fr == "auto":
            if self.embedder is None:
                raise ConfigError("config key 'publish.embedding_fr': auto means the tracker's embedding, found "
                                  "none (tracker.appearance is off and the fast scorer has no FR backbone); "
                                  "name an FR model instead, e.g. facenet")
            return "tracker"
        from streamfiqa.models.fr import create_fr

        return create_fr(cfg.publish.embedding_fr, **cfg.publish.embedding_fr_args)

    def _embed_events(self, events: list[Event]) -> None:
        """Give the crops of ``events`` the embedding of :attr:`event_fr` (one batched run; once per crop)."""
        if self.event_fr is None or self.event_fr == "tracker":
            return
        name = self.event_fr.name
        todo = [e.candidate for e in events if e.candidate is not None and e.candidate.embedding_model != name]
        todo = list({id(c): c for c in todo}.values())
        if todo:
            emb = self.event_fr.embed(np.stack([c.aligned for c in todo]))
            for c, v in zip(todo, emb):
                c.embedding, c.embedding_model = v.astype(np.float32), name

    def run(self, stop: threading.Event | None = None) -> int:
        """Process until every source ends or ``stop`` is set; flushes every track either way.

        Returns:
            0 on success, 1 if a source failed, 3 if an enrolment timed out.
        """
        stop = stop or threading.Event()
        self.states = [self._open(spec, i) for i, spec in enumerate(self.specs)]
        next_stats = time.monotonic() + self.cfg.stats_interval_s
        stage = _DetectStage(self, stop) if self.cfg.detector.thread else None
        try:
            while not stop.is_set():
                if not any(not s.done for s in self.states):
                    break
                busy = self._collect()
                if stage is not None:
                    busy = self._step_staged(stage) or busy
                else:
                    self.wake.clear()
                    busy = self._step() or busy
                    if not busy:
                        self.wake.wait(0.05)
                for tick in self.tickers:
                    tick(self)
                if self.cfg.stats_interval_s > 0 and time.monotonic() >= next_stats:
                    self.log_stats()
                    next_stats = time.monotonic() + self.cfg.stats_interval_s
        finally:
            if stage is not None:
                stage.close()
            for st in self.states:
                if not st.done:
                    self._finish(st, "shutdown")
            for sink in self.sinks:
                sink.close()
            if self.heavy is not None:
                self.heavy.close()
            self.log_stats()
            if self.metrics is not None:
                self.metrics.close()
            log.info("per-frame stage times (ms): %s", self.stats()["stages_ms"])
        return self.exit_code

    def _open(self, spec: SourceSpec, index: int) -> _SourceState:
        t = self.cfg.tracker
        s = self.cfg.selection
        st = _SourceState(
            index, Source(spec, self.cfg.sources, self.wake).start(),
            Tracker(t.high_thresh, t.low_thresh, t.new_track_thresh, t.match_iou, t.max_age, t.min_hits,
                    t.min_similarity, t.reid_similarity, t.reid_window_s,
                    first_id=self.first_track_ids.get(index, 1)),
            BestSelector(s.top_k, s.emit_updates, s.min_dwell_s, s.update_margin))
        if self.cfg.pipeline == "enroll":
            e = self.cfg.enroll
            st.enroll = EnrollSelector(e.count, e.threshold, e.min_pose_delta)
        show = self.cfg.progress == "true" or (self.cfg.progress == "auto" and sys.stderr.isatty())
        if show and not spec.live:
            from tqdm import tqdm
            st.progress = tqdm(desc=spec.id, unit="frame", position=index, leave=True)
        return st

    def open_bests(self, reason: str = "worker_lost") -> list[tuple[str, float, list[Event]]]:
        """For each source still running: its id, the stream time of its last processed frame, and the
        ``best`` event each confirmed open track would get if it ended now (call from a ticker: the runner's
        thread)."""
        out = []
        for st in self.states:
            if st.done:
                continue
            open_ids = {t.track_id for t in st.tracker.tracks if t.state is not TrackState.TENTATIVE}
            open_ids |= set(st.pending_end)  # ended, waiting for their end keyframes
            events = st.selector.snapshot(st.source.spec.id, open_ids, reason)
            self._embed_events(events)
            out.append((st.source.spec.id, st.last_pts, events))
        return out

    def _ready(self, on_end=None, skip: set | frozenset = frozenset()) -> list[tuple[_SourceState, Frame]]:
        """One decoded frame from each active source (index not in ``skip``) that has one; a source that
        ended is passed to ``on_end`` (default: finished here, in the runner's thread)."""
        ready = []
        for st in self.states:
            if st.done or st.index in skip:
                continue
            frame = st.source.read()
            if frame is not None:
                ready.append((st, frame))
            elif st.source.finished:
                (on_end or self._end_source)(st)
        return ready

    def _end_source(self, st: _SourceState) -> None:
        self._finish(st, "error" if st.source.error else "eof")

    def _step(self) -> bool:
        ready = self._ready()
        if ready:
            self._process(ready)
        return bool(ready)

    def _step_staged(self, stage: "_DetectStage") -> bool:
        """With the detection stage in its own thread: score, track and select what it prepared."""
        try:
            kind, payload = stage.out.get(timeout=0.05)
        except queue.Empty:
            return False
        if kind == "end":
            self._end_source(payload)
        else:
            self._score_and_select(payload)
        return True

    def _prepare(self, ready: list[tuple[_SourceState, Frame]]) -> list:
        """Detect (one network run over the frames of every source that had one ready), align, tier-0."""
        timer = _Timer(self.stage_s, self.metrics)
        items = []
        with timer("detect"):
            found = self._detect(ready)
        for (st, frame), faces in zip(ready, found):
            with timer("align"):
                crops = self.aligner.align(frame.image, faces)
            with timer("quality"):
                quality = self.assessor.assess(faces, crops.aligned)
            items.append((st, frame, faces, crops, quality))
        return items

    def _detect(self, ready: list[tuple[_SourceState, Frame]]) -> list:
        """One detection round: every frame in full, or (``detector.full_every`` > 1) through windows around
        each source's known faces, in full after a cut or a jump in time."""
        images = [frame.image for _, frame in ready]
        if self.regions is None:
            return self.detector.detect_batch(images)
        for st, frame in ready:
            if frame.cut or st.detected_pts is None or abs(frame.pts - st.detected_pts) > REGION_GAP_S:
                self.regions.forget(st.index)
            st.detected_pts = frame.pts
        return self.regions.detect_batch(images, [st.index for st, _ in ready])

    def _process(self, ready: list[tuple[_SourceState, Frame]]) -> None:
        """One frame from each source that had one ready: detect and align each, then score all
        their faces in one fast-tier batch (no waiting: only frames already decoded are batched),
        then track and select per source."""
        self._score_and_select(self._prepare(ready))

    def _score_and_select(self, prepared: list) -> None:
        timer = _Timer(self.stage_s, self.metrics)
        items = []
        for st, frame, faces, crops, quality in prepared:
            fast = self.scorer is not None and st.processed % self.cfg.quality.fast_every == 0
            items.append((st, frame, faces, crops, quality, fast))
        with timer("score"):
            batch = [crops.aligned for _, _, faces, crops, _, fast in items if fast and len(faces)]
            splits = np.cumsum([len(b) for b in batch])[:-1]
            fast_scores, embeddings = iter([]), iter([])
            if batch and self.embedder == "scorer":
                q, e = self.scorer.score_and_embed(np.concatenate(batch))
                fast_scores, embeddings = iter(np.split(np.asarray(q, np.float32), splits)), iter(np.split(e, splits))
            elif batch:
                fast_scores = iter(np.split(np.asarray(self.scorer.score(np.concatenate(batch)), np.float32), splits))
        for st, frame, faces, crops, quality, fast in items:
            scores = {"tier0": quality.score}
            emb = None
            if fast and len(faces):
                scores[self.scorer.name] = next(fast_scores)
                emb = next(embeddings, None)
            if emb is None and self.embedder not in (None, "scorer") and len(faces):
                with timer("score"):
                    emb = self.embedder.embed(crops.aligned)
            self._select(st, frame, faces, crops, quality, scores, timer, emb)

    def _select(self, st: _SourceState, frame: Frame, faces, crops, quality, scores: dict, timer,
                emb: np.ndarray | None = None) -> None:
        decided_by = self.scorer.name if self.scorer is not None else "tier0"
        if st.source.spec.live and frame.capture:
            st.lag = time.time() - frame.capture
            st.max_lag = max(st.max_lag, st.lag)
        if frame.cut and self.cfg.tracker.end_at_cut:  # a new shot: nobody on screen is the same track
            ended = self._defer_ends(st, st.tracker.flush("cut"))
            self._emit(st, st.selector.select(st.source.spec.id, frame.pts, {}, set(), ended, []))
        with timer("track"):
            update = st.tracker.update(faces, emb, frame.pts)
            confirmed = {t.track_id for t in st.tracker.tracks if t.state is TrackState.CONFIRMED}
            for observe in self.observers:
                observe(st.source.spec.id, frame, faces, update.assignments, confirmed)
        with timer("select"):
            def candidate(d: int) -> Candidate:
                passed, reasons = bool(quality.passed[d]), quality.reasons[d]
                if self.min_score is not None and decided_by in scores and scores[decided_by][d] < self.min_score:
                    passed, reasons = False, [*reasons, "min_score"]
                return Candidate(
                    float(scores[decided_by][d]), decided_by, {k: float(v[d]) for k, v in scores.items()},
                    quality.row(d), passed, reasons, frame.index, frame.pts,
                    frame.wallclock, faces.boxes[d], faces.landmarks[d], float(faces.scores[d]),
                    crops.aligned[d], crops.display[d],
                    embedding=None if emb is None else emb[d], embedding_model=self._embedding_model)

            if decided_by in scores:
                assigned = {tid: candidate(d) for tid, d in update.assignments}
            else:  # fast tier skipped this frame (quality.fast_every): tracked, not a candidate
                assigned = {}
            events = st.selector.select(st.source.spec.id, frame.pts, assigned, confirmed,
                                        self._defer_ends(st, update.ended), update.dropped)
            if self.heavy is not None:
                for tid, cand in assigned.items():
                    if self.sampler.wants(st.index, tid, cand, st.selector.rank(tid, cand)):
                        self.heavy.submit(Job(st.index, tid, cand))
            if st.enroll is not None:
                events += self._enroll(st, frame, faces, update.assignments, candidate)
        self._emit(st, events)
        st.processed += 1
        st.last_pts = frame.pts
        st.faces += len(faces)
        st.window[0] += 1
        st.window[1] += len(faces)
        if st.progress is not None:
            st.progress.total = st.source.total_frames or None
            st.progress.update(1)

    def _enroll(self, st: _SourceState, frame: Frame, faces, assignments, candidate) -> list[Event]:
        if st.first_pts is None:
            st.first_pts = frame.pts
        events = []
        if len(faces):
            subject = int(np.argmax(faces.sizes))
            tid = next((t for t, d in assignments if d == subject), None)
            events = st.enroll.select(st.source.spec.id, tid, candidate(subject))
        if st.enroll.done:
            log.info("%s: enrolled %d crops", st.source.spec.id, st.enroll.count)
            self._finish(st, "enrolled", events)
            return []
        waited = frame.pts - st.first_pts
        if waited >= self.cfg.enroll.timeout_s:
            events.append(st.enroll.timeout_event(st.source.spec.id, waited))
            self.exit_code = max(self.exit_code, 3)
            self._finish(st, "timeout", events)
            return []
        return events

    def _finish(self, st: _SourceState, reason: str, pending: list[Event] | None = None) -> None:
        if st.done:
            return
        st.done = True
        events = list(pending or [])
        if st.enroll is not None and not st.enroll.done and reason in ("eof", "error", "shutdown"):
            waited = 0.0 if st.first_pts is None else st.source.last_pts - st.first_pts
            events.append(st.enroll.timeout_event(st.source.spec.id, waited))
            self.exit_code = max(self.exit_code, 3)
        ended = st.tracker.flush(reason if reason != "enrolled" else "shutdown")
        if reason != "enrolled":
            ended = self._defer_ends(st, ended)
            if st.pending_end:
                idle = all(o.done for o in self.states)
                self.heavy.drain(self.cfg.quality.keyframes.end_wait_s, all_cores=idle)
                self._collect()
        ended += [track for track, _ in st.pending_end.values()]  # end keyframes not scored in time
        st.pending_end.clear()
        events += st.selector.select(st.source.spec.id, 0.0, {}, set(), ended, [])
        self._emit(st, events)
        st.source.close()
        if st.source.error:
            self.exit_code = max(self.exit_code, 1)
        if st.progress is not None:
            st.progress.close()
        live = f", max lag {st.max_lag:.2f} s, {st.source.lag_skipped} packets skipped to catch up" \
            if st.source.spec.live else ""
        log.info("%s: finished (%s): %d frames, %d faces, %d events, %d dropped%s%s", st.source.spec.id, reason,
                 st.processed, st.faces, st.events, st.source.dropped, live,
                 f", error: {st.source.error}" if st.source.error else "")

    def _defer_ends(self, st: _SourceState, ended: list) -> list:
        """Ended tracks whose finalists lack heavy scores wait for their end keyframes (every unscored
        finalist, so that the heavy tier can rank them all on one scale); returns the rest."""
        if self.heavy is None or not self.sampler.at_end:
            return ended
        now = []
        for track in ended:
            self.sampler.forget(st.index, track.track_id)
            todo = [c for c in st.selector.finalists(track.track_id) if not c.has_heavy]
            sent = sum(self.heavy.submit(Job(st.index, track.track_id, c, True)) for c in todo)
            if sent:
                st.pending_end[track.track_id] = [track, sent]
            else:
                now.append(track)
        return now

    def _collect(self) -> bool:
        """Apply finished heavy scores; emit the ``best`` of tracks whose end keyframe came back."""
        if self.heavy is None:
            return False
        results = self.heavy.results()
        for job, score in results:
            st = self.states[job.source]
            job.cand.rescore(self.heavy.name, score)
            waiting = st.pending_end.get(job.track_id) if job.at_end else None
            if waiting is not None:
                waiting[1] -= 1
                if waiting[1] <= 0:
                    del st.pending_end[job.track_id]
                    self._emit(st, st.selector.select(st.source.spec.id, 0.0, {}, set(), [waiting[0]], []))
        return bool(results)

    def _emit(self, st: _SourceState, events: list[Event]) -> None:
        self._embed_events(events)
        for event in events:
            st.events += 1
            st.by_kind[event.kind] = st.by_kind.get(event.kind, 0) + 1
            for sink in self.sinks:
                sink.emit(event)

    def stats(self) -> dict:
        """Counters of the run so far, per source and per stage."""
        out = {"stages_ms": {k: round(1000 * v / max(sum(s.processed for s in self.states), 1), 2)
                             for k, v in self.stage_s.items()}, "sources": {}}
        for st in self.states:
            src = st.source
            out["sources"][src.spec.id] = {
                "processed": st.processed, "faces": st.faces, "events": st.events, "decoded": src.decoded,
                "events_by_kind": dict(st.by_kind),
                "dropped": src.dropped, "skipped": src.skipped, "reconnects": src.reconnects,
                "lag_s": round(st.lag, 3), "max_lag_s": round(st.max_lag, 3), "lag_skipped": src.lag_skipped,
                "decode_errors": src.decode_errors,
                "queue": src.depth, "decode_ms": round(1000 * src.decode_s / max(src.decoded, 1), 2),
                "cuts": src.cuts,
                "done": st.done}
        if self.regions is not None:
            out["detector"] = dict(self.regions.counts)
        out["publish_dropped"] = sum(getattr(s, "dropped", 0) for s in self.sinks)
        if self.heavy is not None:
            out["heavy"] = self.heavy.stats()
        return out

    def log_stats(self) -> None:
        """Log one line: fps and faces/s per source since the last line, queue depth, drops."""
        parts = []
        for st in self.states:
            frames, faces, t0 = st.window
            dt = max(time.perf_counter() - t0, 1e-6)
            src = st.source
            live = f", lag {st.lag:.2f} s, lag-skipped {src.lag_skipped}" if src.spec.live else ""
            parts.append(f"{src.spec.id}: {frames / dt:.1f} fps, {faces / dt:.1f} faces/s, "
                         f"queue {src.depth}/{self.cfg.sources.queue_size}, dropped {src.dropped}, "
                         f"reconnects {src.reconnects}, decode errors {src.decode_errors}{live}")
            st.window = [0, 0, time.perf_counter()]
        pub = sum(getattr(s, "dropped", 0) for s in self.sinks)
        heavy = ""
        if self.heavy is not None:
            h = self.heavy.stats()
            heavy = f" | heavy {h['scorer']}: done {h['done']}, skipped {h['skipped']}, queue {h['queue']}"
        if self.regions is not None:
            c = self.regions.counts
            heavy += f" | detector: full {c['full']}, windowed {c['windowed']} ({c['windows']} windows)"
        stages = " ".join(f"{k} {v:.1f}" for k, v in self.stats()["stages_ms"].items())
        log.info("stats | %s | publish dropped %d%s | ms/frame: %s", " | ".join(parts), pub, heavy, stages)


class _DetectStage:
    """Detection, alignment and tier-0 of the next frames in a thread of their own, while the calling
    thread scores, tracks and selects the previous ones (``detector.thread``): on a 2-core machine each
    stage keeps one core busy. A queue of two rounds between them bounds memory and latency; when it is
    full this thread waits, so the sources' own queues (and their drop policy) take the pressure."""

    def __init__(self, runner: Runner, stop: threading.Event) -> None:
        self.runner, self.stop = runner, stop
        self.out: queue.Queue = queue.Queue(maxsize=2)
        self._ended: set = set()
        self._halt = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="detect", daemon=True)
        self.thread.start()

    def _put(self, item) -> bool:
        while not (self._halt.is_set() or self.stop.is_set()):
            try:
                self.out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _loop(self) -> None:
        r = self.runner
        try:
            while not (self._halt.is_set() or self.stop.is_set()):
                r.wake.clear()
                ready = r._ready(self._end, self._ended)
                if ready:
                    self._put(("frames", r._prepare(ready)))
                else:
                    r.wake.wait(0.05)
        except Exception:  # noqa: BLE001 - surface in the log; the main loop ends the sources
            log.exception("detection stage failed")
            for st in r.states:
                if st.index not in self._ended:
                    st.source.error = st.source.error or "detection stage failed"
                    self._end(st)

    def _end(self, st: _SourceState) -> None:
        """A source ended: the runner's thread finishes it, after the frames already handed over."""
        self._ended.add(st.index)
        self._put(("end", st))

    def close(self) -> None:
        self._halt.set()
        self.thread.join(timeout=5)


class _Timer:
    def __init__(self, acc: dict, metrics=None) -> None:
        self.acc, self.metrics = acc, metrics

    def __call__(self, stage: str) -> "_Timer":
        self.stage = stage
        return self

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc) -> None:
        dt = time.perf_counter() - self.t0
        self.acc[self.stage] += dt
        if self.metrics is not None:
            self.metrics.observe(self.stage, dt)
