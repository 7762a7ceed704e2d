"""The frame loop: sources → detect → align → quality → score → track → best crop → sinks.

The stages are built elsewhere (:mod:`streamfiqa.pipeline.build`) and handed in as :class:`Stages`.
"""
from __future__ import annotations

import collections
import logging
import sys
import threading
import time

from streamfiqa.config import Config
from streamfiqa.events import Event
from streamfiqa.io.sinks import delivery_counts, leaf_sinks
from streamfiqa.io.shots import region_change
from streamfiqa.io.specs import SourceSpec
from streamfiqa.pipeline.best_crop import ScoredFrame, track_finisher
from streamfiqa.pipeline.detect_thread import DetectStage
from streamfiqa.pipeline.per_source import SourceRun
from streamfiqa.pipeline.stages import Stages
from streamfiqa.pipeline.stats import SourceStatus, StageClock, run_summary, stats_line
from streamfiqa.track.tracker import TrackState
from streamfiqa.types import Frame

log = logging.getLogger(__name__)
#: A source whose frames jump more than this (a reconnect, frames dropped to catch up) is detected in full
#: again: its faces' last places no longer say where to look (``detector.full_every``).
REGION_GAP_S = 0.5


class Runner:
    """Runs one pipeline over several sources in the calling thread.

    Decoding happens in one thread per source and publishing in the publisher's thread; everything else runs here,
    round-robin over the sources that have a frame ready (detection optionally in a thread of its own).

    Args:
        cfg: the run's configuration.
        specs: sources to open.
        sinks: objects with ``emit(event)`` and ``close()``.
        stages: the built stages.
    """

    def __init__(self, cfg: Config, specs: list[SourceSpec], sinks: list, stages: Stages) -> None:
        if not specs:
            raise ValueError("expected at least one source, found none")
        self.cfg, self.specs, self.sinks, self.s = cfg, specs, sinks, stages
        self.wake = threading.Event()
        self.states: list[SourceRun] = []
        self.exit_code = 0
        self.metrics = None  # set by the builder when metrics.port is configured
        self.clock = StageClock()
        #: Callables ``(source_id, scored_frame, assignments, confirmed_ids)`` told of every tracker step (a
        #: :class:`~streamfiqa.pipeline.best_crop.ScoredFrame`: the frame, its faces, crops, scores, embeddings).
        self.observers: list = []
        #: Callables ``(runner)`` called once per loop turn in the runner's own thread (where the selectors
        #: may be read safely: :meth:`open_bests`).
        self.tickers: list = []
        #: First track id of each source (by index); a source resumed elsewhere continues above its old ids.
        self.first_track_ids: dict[int, int] = {}
        self._waiting: collections.deque[SourceRun] = collections.deque()  # files not yet started (_admit)

    def run(self, stop: threading.Event | None = None) -> int:
        """Process until every source ends or ``stop`` is set; flushes every track either way.

        Returns:
            0 on success, 1 if a source failed, 3 if an enrolment timed out.
        """
        stop = stop or threading.Event()
        started = time.monotonic()
        self.clock.metrics = self.metrics
        show = self.cfg.progress == "true" or (self.cfg.progress == "auto" and sys.stderr.isatty())
        # two workers end the tracks of every source (second look, face measures): a track's end no longer stalls
        # the frame loop, and the tracks still open at a clip's end are ended on two cores (each source's events
        # still come out in the order its tracks ended: BestSelector.finished)
        finisher = track_finisher() if self.cfg.selection.finish_thread else None
        if self.s.heavy is not None:
            # files only: every keyframe the heavy tier is offered is scored, so what is published does not depend
            # on how fast it went; with a live source the heavy tier skips rather than stall the cameras
            self.s.heavy.wait = not any(spec.live for spec in self.specs)
        # live sources all start; files and folders start a few at a time (_admit): each open one holds a decoder
        # and a queue of frames, and on a machine's few cores more at once only share the same time
        self.states = [SourceRun.open(spec, i, self.cfg, self.wake, self.first_track_ids.get(i, 1), show,
                                      self.s.detector.score_scale, finisher, start=spec.live)
                       for i, spec in enumerate(self.specs)]
        self._waiting = collections.deque(st for st in self.states if not st.live)
        limit = self.cfg.sources.max_open_files
        if limit and len(self._waiting) > limit:
            log.info("%d files: %d are read at a time, the others wait their turn (sources.max_open_files)",
                     len(self._waiting), limit)
        self._admit()
        next_stats = time.monotonic() + self.cfg.stats_interval_s
        stage = DetectStage(self, stop) if self.cfg.detector.thread else None
        try:
            while not stop.is_set() and any(not s.done for s in self.states):
                self._admit()
                busy = self._collect()
                if stage is not None:
                    item = stage.get()
                    if item is not None:
                        (self._end_source if item[0] == "end" else self._score_and_select)(item[1])
                    busy = busy or item is not None
                else:
                    self.wake.clear()
                    ready = self.ready()
                    if ready:
                        self._score_and_select(self.prepare(ready))
                    elif not busy:
                        self.wake.wait(0.05)
                self._publish_finished()
                self._end_stalled()
                for tick in self.tickers:
                    tick(self)
                if self.cfg.stats_interval_s > 0 and time.monotonic() >= next_stats:
                    self.log_stats()
                    next_stats = time.monotonic() + self.cfg.stats_interval_s
        finally:
            for st in self.states:
                if not st.done:
                    # decode no more while the open tracks are flushed (seconds with many tracks): a live camera's
                    # frames of that time would only overflow its queue and read as drops
                    st.source.stop()
            if stage is not None:
                stage.close()
            for st in self.states:
                if not st.done:
                    self._finish(st, "shutdown")
            if finisher is not None:
                finisher.shutdown()
            # A stage that wraps sinks (the persons merger) publishes what it holds; then publishers close first
            # (what ZeroMQ could not get out counts in the summary), then the sinks that keep the summary
            # (manifest.json).
            for sink in self.sinks:
                if hasattr(sink, "sinks"):
                    sink.flush()
            leaves = leaf_sinks(self.sinks)
            for sink in leaves:
                if not hasattr(sink, "summarise"):
                    sink.close()
            self._summarise(time.monotonic() - started)
            for sink in leaves:
                if hasattr(sink, "summarise"):
                    sink.close()
            unwritten = delivery_counts(leaves)["output_unwritten"]
            if unwritten:
                self.exit_code = max(self.exit_code, 1)
                log.error("%d event(s) could not be written to output.dir (events_unwritten in the summary)",
                          unwritten)
            if self.s.heavy is not None:
                self.s.heavy.close()
            if self.metrics is not None:
                self.metrics.close()
            log.info("per-frame stage times (ms): %s", self.stats()["stages_ms"])
        return self.exit_code

    def _admit(self) -> None:
        """Start the files waiting their turn while fewer than ``sources.max_open_files`` are being read."""
        if not self._waiting:  # (every loop turn: nothing to count once all have started)
            return
        limit = self.cfg.sources.max_open_files or len(self.states)
        reading = sum(1 for st in self.states if st.source.started and not st.done and not st.live)
        while self._waiting and reading < limit:
            st = self._waiting.popleft()
            if not st.done:  # (a run stopped meanwhile ends it unstarted)
                st.start()
                reading += 1

    def open_bests(self, reason: str = "worker_lost") -> list[tuple[str, float, list[Event]]]:
        """For each source still running: its id, the stream time of its last processed frame, and the
        ``best`` event each confirmed open track would get if it ended now (call from a ticker: the runner's
        thread)."""
        out = []
        for st in self.states:
            if st.done:
                continue
            open_ids = {t.track_id for t in st.tracker.tracks if t.state is not TrackState.TENTATIVE}
            if self.s.heavy is not None:
                open_ids |= self.s.heavy.waiting_ids(st.index)  # ended, waiting for their end keyframes
            events = st.selector.snapshot(st.source.spec.id, open_ids, reason)
            self._embed(events)
            out.append((st.source.spec.id, st.last_pts, events))
        return out

    def ready(self, on_end=None, skip: set | frozenset = frozenset()) -> list[tuple[SourceRun, Frame]]:
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

    def _end_stalled(self) -> None:
        """End the open tracks of each live source that stalled (:meth:`SourceRun.stalled`): a camera that dropped
        or froze would otherwise hold its people's best crops until it came back or the run stopped. Its frames,
        when they come again, start new tracks."""
        for st in self.states:
            if st.stalled(self.cfg.tracker.max_age):
                log.info("%s: no frame for %.1f s: ending its %d open track(s)", st.id, st.silent_s,
                         len(st.tracker.tracks))
                ended = self._defer(st, st.tracker.flush("stalled"))
                self._emit(st, st.selector.select(st.id, st.last_pts, {}, set(), ended, []))

    def _end_source(self, st: SourceRun) -> None:
        self._finish(st, "error" if st.source.error else "eof")

    def prepare(self, ready: list[tuple[SourceRun, Frame]]) -> list:
        """Detect (one network run over the frames of every source that had one ready), align, tier-0."""
        with self.clock("detect"):
            found = self._detect(ready)
        items = []
        for (st, frame), faces in zip(ready, found):
            with self.clock("align"):
                crops = self.s.aligner.align(frame.image, faces)
            with self.clock("quality"):
                quality = self.s.assessor.assess(faces, crops.aligned, crops.valid)
            full = None if self.s.regions is None else st.index in self.s.regions.last_full
            items.append((st, ScoredFrame(frame, faces, crops, quality, {"tier0": quality.score}, full=full)))
        return items

    def _detect(self, ready: list[tuple[SourceRun, Frame]]) -> list:
        """Every frame in full, or (``detector.full_every`` > 1) through windows around each source's known faces,
        in full after a cut or a jump in time."""
        images = [frame.image for _, frame in ready]
        if self.s.regions is None:
            return self.s.detector.detect_batch(images)
        for st, frame in ready:
            if frame.cut or self._candidate(frame) or st.detected_pts is None \
                    or abs(frame.pts - st.detected_pts) > REGION_GAP_S:
                self.s.regions.forget(st.index)
            st.detected_pts = frame.pts
        return self.s.regions.detect_batch(images, [st.index for st, _ in ready])

    def _candidate(self, frame: Frame) -> bool:
        """Whether ``frame`` may start a new shot: a change past ``sources.cut_change`` or a one-frame step."""
        return frame.step or frame.change >= self.cfg.sources.cut_change

    def _score_and_select(self, prepared: list) -> None:
        """The fast tier over the faces of every prepared frame in one batch, then tracking and selection per
        source."""
        fast = [sf for st, sf in prepared if st.processed % self.cfg.quality.fast_every == 0]
        with self.clock("score"):
            self.s.score(fast, prepared)
        for st, sf in prepared:
            self._track_and_select(st, sf)

    def _track_and_select(self, st: SourceRun, sf: ScoredFrame) -> None:
        s, frame, sid = self.s, sf.frame, st.source.spec.id
        decided_by = s.scorer.name if s.scorer is not None else "tier0"
        st.observe_lag(frame.capture)
        # a candidate cut is one unless a face of the previous frame continues unchanged (an insert changed beside it)
        still, candidate = self.cfg.sources.cut_face_still, self._candidate(frame)
        changes = (region_change(frame.thumbs, sf.faces.boxes, frame.image.shape[:2])
                   if frame.thumbs is not None and still > 0 else None)
        sf.cut = frame.cut or (candidate
                               and not st.tracker.continues(sf.faces, sf.embeddings, changes=changes, still=still))
        st.cuts += int(sf.cut)
        st.cuts_held += int(candidate and not sf.cut)
        if sf.cut and self.cfg.tracker.end_at_cut:  # a new shot: nobody on screen is the same track
            self._emit(st, st.selector.select(sid, frame.pts, {}, set(), self._defer(st, st.tracker.flush("cut")), []))
        with self.clock("track"):
            # a face's usual change is learnt from ordinary frames: a candidate's (a cut's above all) would inflate it
            update = st.tracker.update(sf.faces, sf.embeddings if s.appearance else None, frame.pts, sf.full,
                                       None if candidate or frame.cut else changes)
            confirmed = {t.track_id for t in st.tracker.tracks if t.state is TrackState.CONFIRMED}
            for observe in self.observers:
                observe(sid, sf, update.assignments, confirmed)
        with self.clock("select"):
            def candidate(d: int):
                return sf.candidate(d, decided_by, s.min_score, s.embedding_model, s.utility_name)

            # a frame the fast tier skipped (quality.fast_every) is tracked, not a candidate
            assigned = {tid: candidate(d) for tid, d in update.assignments} if decided_by in sf.scores else {}
            events = st.selector.select(sid, frame.pts, assigned, confirmed, self._defer(st, update.ended),
                                        update.dropped)
            if s.heavy is not None:
                s.heavy.offer(st.index, st.selector, assigned)
            ended = None
            if st.enroll is not None:
                more, ended = st.enroll.step(frame.pts, sf.faces.sizes, update.assignments, candidate)
                events += more
        st.count(sf)
        if ended is not None:
            self.exit_code = max(self.exit_code, 3 if ended == "timeout" else 0)
            self._finish(st, ended, events)
        else:
            self._emit(st, events)

    def _finish(self, st: SourceRun, reason: str, pending: list[Event] | None = None) -> None:
        """End a source: flush its tracks (``reason``: eof, error, shutdown, enrolled, timeout), emit the rest."""
        if st.done:
            return
        st.done = True
        events = list(pending or [])
        if st.enroll is not None and reason in ("eof", "error", "shutdown"):
            given_up = st.enroll.give_up(st.source.last_pts, reason)
            events += given_up
            self.exit_code = max(self.exit_code, 3 if any(e.kind == "enroll_timeout" for e in given_up) else 0)
        ended = st.tracker.flush("shutdown" if reason == "enrolled" else reason)
        heavy = self.s.heavy
        if heavy is not None and reason != "enrolled":
            ended = self._defer(st, ended)
            if heavy.waiting_ids(st.index):
                heavy.drain(all_cores=all(o.done for o in self.states))
                self._collect()
        if heavy is not None:
            ended += heavy.abandon(st.index)  # end keyframes not scored in time: the fast scale ranks
        events += st.selector.select(st.source.spec.id, 0.0, {}, set(), ended, [])
        events += st.selector.finished(wait=True)  # tracks that ended earlier and are still being finished
        self._emit(st, events)
        st.source.close()
        if st.source.error:
            self.exit_code = max(self.exit_code, 1)
        if st.progress is not None:
            st.progress.close()
        log.info("%s", st.summary(reason))
        if reason == "eof" and not st.live and st.processed and not st.faces:
            d = self.cfg.detector  # a file without a single face is rarely what was meant: say what could hide them
            side = f"frames are detected at {d.max_side} px on their longer side" if d.max_side else "at full size"
            log.warning("%s: no face found in any of its %d frames (detector.max_side %d: %s; detector.min_face %d "
                        "px; detector.score_threshold %s)", st.id, st.processed, d.max_side, side, d.min_face,
                        "null: the detector's own" if d.score_threshold is None else d.score_threshold)

    def _defer(self, st: SourceRun, ended: list) -> list:
        """Ended tracks whose finalists the heavy tier still has to score wait for it; returns the rest."""
        return ended if self.s.heavy is None else self.s.heavy.defer_ends(st.index, st.selector, ended)

    def _collect(self) -> bool:
        """Apply finished heavy scores; emit the ``best`` of tracks whose end keyframes all came back."""
        if self.s.heavy is None:
            return False
        done = self.s.heavy.collect()
        for source, track in done:
            st = self.states[source]
            self._emit(st, st.selector.select(st.source.spec.id, 0.0, {}, set(), [track], []))
        return bool(done)

    def _publish_finished(self) -> None:
        """Emit the ``best`` events the finisher has made since the last turn (a camera's track that ended before an
        outage is published now, not at its next frame)."""
        for st in self.states:
            if not st.done and st.selector.finishing:
                self._emit(st, st.selector.finished())

    def _embed(self, events: list[Event]) -> None:
        if self.s.event_embedder is not None:
            self.s.event_embedder(events)

    def _emit(self, st: SourceRun, events: list[Event]) -> None:
        self._embed(events)
        for event in events:
            st.counted(event.kind)
            for sink in self.sinks:
                sink.emit(event)

    def status(self) -> list[SourceStatus]:
        """Every source's counters so far."""
        return [st.status() for st in self.states]

    def stats(self) -> dict:
        """Counters of the run so far, per source and per stage."""
        status = self.status()
        out = {"stages_ms": self.clock.ms_per_frame(sum(s.processed for s in status)),
               "sources": {s.id: s.as_dict() for s in status}, **delivery_counts(self.sinks)}
        out["faces_dropped"] = dict(self.s.detector.dropped)
        if self.s.regions is not None:
            out["detector"] = dict(self.s.regions.counts)
        if self.s.heavy is not None:
            out["heavy"] = self.s.heavy.stats()
        return out

    def _summarise(self, elapsed: float) -> None:
        """Log the stats line and the run's summary; hand it to the sinks that keep one (``manifest.json``)."""
        self.log_stats()
        stream_s = sum(st.last_pts - st.first_pts for st in self.states if st.first_pts is not None)  # 0.0 is a time
        summary = run_summary(self.stats(), elapsed, stream_s, sum(st.tracker.started for st in self.states),
                              self.states[0].tracker.new_track_thresh if self.states else None)
        for sink in leaf_sinks(self.sinks):
            if hasattr(sink, "summarise"):
                sink.summarise(summary)

    def log_stats(self) -> None:
        """Log one line: fps and faces/s per source since the last line, queue depth, drops, stage times."""
        rates = {st.id: st.rate.take() for st in self.states}
        live = {st.id: st.live for st in self.states}
        running = {st.id for st in self.states if st.source.started and not st.done}
        # with files waiting their turn or finished, the line shows those being read, and how many others there are
        shown = running if running and len(running) < len(self.states) else None
        log.info("%s", stats_line(self.stats(), rates, live, self.cfg.sources.queue_size, shown))
