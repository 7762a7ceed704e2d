"""Scale-out on Ray: sources spread over worker actors, every event fanned in to the configured sinks.

    streamfiqa cam1=rtsp://… cam2=rtsp://… … --pipeline cctv --set fleet.workers=8 --set fleet.address=auto

Each worker is a Ray actor (``fleet.cpus_per_worker`` / ``fleet.gpus_per_worker`` decide where Ray places it:
one per node or per GPU) that runs one :class:`~streamfiqa.pipeline.runner.Runner` over the sources assigned to it, so
the fast tier batches the faces of all its sources in one network run. The driver (this process) is the
fan-in: it polls every worker, passes their events to the sinks of the config (ZeroMQ, files, the
cross-camera merge: the same schema as one process) and keeps, per source, the latest checkpoint a worker
took in its runner's own thread: the stream time reached and the ``best`` event every open track would get.

When a worker dies (its process is killed, its node is lost), its open tracks end at the fan-in with that
checkpoint's ``best`` (``end_reason: worker_lost``), a replacement worker is started, and its sources resume
there: files at the checkpoint's stream time, live sources at the live edge. Track ids continue above the
ids the source had. The frames between the checkpoint and the resume are counted (``gap_s``, ``gap_frames``).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field

from streamfiqa.config import Config
from streamfiqa.events import Event
from streamfiqa.io.metrics import Metrics
from streamfiqa.io.sinks import delivery_counts, leaf_sinks
from streamfiqa.io.specs import SourceSpec, parse_sources
from streamfiqa.pipeline.build import build_runner, build_sinks, check_plugins
from streamfiqa.pipeline.stats import merged_summary

log = logging.getLogger(__name__)
# Ray's processes install absl's failure signal handler, which prints a crash report ("*** SIGTERM received at time=…
# PC: @ 0x…") for the SIGTERM of a normal stop, as if the run had crashed; the stop is the CLI's to handle (flush,
# exit 0). Read when Ray is imported: before that, and only where the user has not said otherwise.
os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")


class _QueueSink:
    """A runner's sink inside a worker: events wait, in order with the checkpoints, for the next poll."""

    def __init__(self, items: list, lock: threading.Lock) -> None:
        self.items, self.lock = items, lock

    def emit(self, event: Event) -> None:
        with self.lock:
            self.items.append(("event", event))

    def summarise(self, summary: dict) -> None:
        """The runner's summary at its end: the fan-in adds up the workers' into the run's ``manifest.json``."""
        with self.lock:
            self.items.append(("summary", summary))

    def close(self) -> None:
        pass


class FleetWorker:
    """One worker: runners over the groups of sources assigned to it (a Ray actor; see :func:`_actor_class`).

    Args:
        cfg: the run's configuration (its ``fleet`` section is ignored here).
        checkpoint_s: how often each runner records its open tracks' best events.
    """

    def __init__(self, cfg: Config, checkpoint_s: float = 1.0) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.cfg, self.checkpoint_s = cfg, float(checkpoint_s)
        self.items: list = []
        self.lock = threading.Lock()
        self.groups: list[tuple] = []  # (runner, thread, stop)

    def pid(self) -> int:
        """This worker's process id."""
        return os.getpid()

    def start(self, specs: list[SourceSpec], first_track_ids: dict[str, int]) -> None:
        """Run ``specs`` in a runner of their own (one network run per frame round over all of them)."""

        runner = build_runner(self.cfg, specs, [_QueueSink(self.items, self.lock)])
        runner.first_track_ids = {i: first_track_ids.get(s.id, 1) for i, s in enumerate(specs)}
        last = [0.0]

        def checkpoint(r) -> None:
            now = time.monotonic()
            if now - last[0] >= self.checkpoint_s:
                last[0] = now
                snap = r.open_bests()
                stats = r.stats()
                with self.lock:
                    self.items.extend(("checkpoint", s) for s in snap)
                    self.items.append(("stats", stats))

        runner.tickers.append(checkpoint)
        stop = threading.Event()

        def run() -> None:
            code = 1
            try:
                code = runner.run(stop)
            finally:
                with self.lock:
                    for s in runner.status():
                        self.items.append(("finished", (s.id, code, s.error, s.processed, s.dropped)))

        thread = threading.Thread(target=run, name=f"runner-{specs[0].id}", daemon=True)
        thread.start()
        self.groups.append((runner, thread, stop))

    def poll(self) -> list:
        """Everything since the last poll, in order: ``event``, ``checkpoint`` and ``finished`` items."""
        with self.lock:
            out, self.items[:] = list(self.items), []
        return out

    def stop(self, timeout_s: float = 30.0) -> list:
        """Stop every runner (open tracks flush as on SIGTERM) and return what they emitted last."""
        for _, _, stop in self.groups:
            stop.set()
        for _, thread, _ in self.groups:
            thread.join(timeout_s)
        return self.poll()


@dataclass
class _Source:
    spec: SourceSpec
    worker: int
    last_pts: float = 0.0
    checkpoint_at: float = field(default_factory=time.time)
    open: dict = field(default_factory=dict)  # track id → the best event of the last checkpoint
    max_track: int = 0
    done: bool = False
    code: int = 0


class Fleet:
    """The driver: starts the workers, assigns the sources, fans the events in, replaces dead workers.

    Args:
        cfg: the run's configuration (``fleet.*``: workers, Ray address, resources per worker).
        sources: source strings as on the command line.
        sinks: where every event goes (``build.build_sinks(cfg)`` by default).
    """

    def __init__(self, cfg: Config, sources: list[str], sinks: list | None = None) -> None:
        if cfg.fleet.workers < 1:
            raise ValueError(f"fleet.workers: expected >= 1, found {cfg.fleet.workers}")
        self.cfg = cfg
        check_plugins(cfg)  # an unknown scorer or selector part fails here, before Ray starts (not in a worker)
        specs = parse_sources(sources, cfg.sources.live, strict=False)
        if sinks is None:
            sinks = build_sinks(cfg)
        self.sinks = sinks
        n = min(cfg.fleet.workers, len(specs))
        if n < cfg.fleet.workers:  # a worker runs whole sources: one source is never split over two
            log.warning("fleet: %d workers asked for, %d source(s) to run: starting %d (a source runs on one "
                        "worker)", cfg.fleet.workers, len(specs), n)
        self.sources = {s.id: _Source(s, i % n) for i, s in enumerate(specs)}
        self.workers: list = [None] * n
        self.stats = {"workers": n, "restarts": 0, "events": 0, "worker_lost_tracks": 0, "gap_s": 0.0,
                      "gap_frames": 0, "sources": {}}
        self._actor = None
        self._source_stats: dict[str, dict] = {}  # each source's runner counters, as last polled
        self._base: dict[str, dict] = {}          # counters of the source's earlier (dead) workers
        self._heavy: dict[int, dict] = {}
        self._summaries: list[dict] = []  # each worker runner's summary at its end
        self.metrics = None
        if cfg.metrics.port is not None:  # the fan-in serves the fleet's metrics (workers serve none)

            self.metrics = Metrics(self.metrics_stats, cfg.metrics.port, cfg.metrics.address)

    _COUNTERS = ("processed", "decoded", "faces", "reconnects", "decode_errors", "cuts", "dropped", "lag_skipped")

    @classmethod
    def _add_counters(cls, a: dict, b: dict) -> dict:
        """``a`` with the counters of ``b`` added (events by kind too); other fields are ``a``'s."""
        out = dict(a)
        for k in cls._COUNTERS:
            out[k] = a.get(k, 0) + b.get(k, 0)
        kinds = dict(a.get("events_by_kind", {}))
        for kind, n in b.get("events_by_kind", {}).items():
            kinds[kind] = kinds.get(kind, 0) + n
        out["events_by_kind"] = kinds
        return out

    def metrics_stats(self) -> dict:
        """Runner-shaped stats of the whole fleet (what :class:`~streamfiqa.io.metrics.Metrics` reads): each
        source's counters summed over the workers it ran on, plus the fleet's own."""
        sources = {sid: self._add_counters(st, self._base.get(sid, {}))
                   for sid, st in list(self._source_stats.items())}
        heavy = {}
        for h in self._heavy.values():
            for k in ("submitted", "skipped", "done", "failed", "queue"):
                heavy[k] = heavy.get(k, 0) + h.get(k, 0)
        return {"sources": sources, "heavy": heavy or None,
                "publish_dropped": delivery_counts(self.sinks)["publish_dropped"],
                "fleet": {k: v for k, v in self.stats.items() if k != "sources"}}

    def _spawn(self, index: int):
        import ray

        f = self.cfg.fleet
        opts = {"num_cpus": f.cpus_per_worker, "max_restarts": 0, "name": None}
        if f.gpus_per_worker:
            opts["num_gpus"] = f.gpus_per_worker
        if f.spread:
            opts["scheduling_strategy"] = "SPREAD"
        if self._actor is None:
            self._actor = ray.remote(FleetWorker)
        worker_cfg = dataclasses.replace(self.cfg, output=dataclasses.replace(self.cfg.output, dir=None),
                                         # the workers embed the crops the fan-in's merge needs
                                         publish=dataclasses.replace(self.cfg.publish, endpoint=None,
                                                                     embedding=self.cfg.publish.embedding
                                                                     or self.cfg.persons.enabled),
                                         persons=dataclasses.replace(self.cfg.persons, enabled=False),
                                         metrics=dataclasses.replace(self.cfg.metrics, port=None))
        actor = self._actor.options(**{k: v for k, v in opts.items() if v is not None}).remote(
            worker_cfg, f.checkpoint_s)
        self.workers[index] = actor
        return actor

    def _start(self, index: int, names: list[str]) -> None:
        import ray

        specs = [self.sources[n].spec for n in names]
        for n in names:  # a gap is counted from here until the first checkpoint arrives
            self.sources[n].checkpoint_at = time.time()
        firsts = {n: self.sources[n].max_track + 1 for n in names}
        ray.get(self.workers[index].start.remote(specs, firsts))
        log.info("fleet: worker %d runs %s", index, ", ".join(names))

    def _handle(self, items: list) -> None:
        for kind, payload in items:
            if kind == "event":
                ev: Event = payload
                src = self.sources.get(ev.source_id)
                if src is not None and ev.track_id is not None:
                    src.max_track = max(src.max_track, ev.track_id)
                    if ev.kind == "best":
                        src.open.pop(ev.track_id, None)
                self._emit(ev)
            elif kind == "checkpoint":
                sid, pts, events = payload
                src = self.sources[sid]
                src.last_pts, src.checkpoint_at = pts, time.time()
                src.open = {e.track_id: e for e in events}
                if events:
                    src.max_track = max(src.max_track, max(e.track_id for e in events))
            elif kind == "stats":
                for sid, st in payload["sources"].items():
                    if sid in self.sources:
                        self._source_stats[sid] = st
                        if payload.get("heavy"):
                            self._heavy[self.sources[sid].worker] = payload["heavy"]
            elif kind == "summary":
                self._summaries.append(payload)
            elif kind == "finished":
                sid, code, error, processed, dropped = payload
                src = self.sources[sid]
                src.done, src.code = True, code
                src.open.clear()
                self.stats["sources"][sid] = {"processed": processed, "dropped": dropped, "error": error}

    def _write_summary(self, elapsed_s: float) -> None:
        """The run's ``manifest.json`` (a file sink's): the workers' summaries added up, the fleet's own counts
        beside them. A worker that died gave none: its sources' counts before the failure are missing, which
        ``fleet.restarts`` says."""
        keepers = [s for s in leaf_sinks(self.sinks) if hasattr(s, "summarise")]
        if not keepers or not self._summaries:
            return
        summary = merged_summary(self._summaries, elapsed_s, {k: v for k, v in self.stats.items() if k != "sources"})
        counts = delivery_counts(self.sinks)  # the fan-in's own sinks: the workers' queues drop nothing
        summary["publish_close_complete"] = counts["publish_close_complete"]
        summary["dropped"]["events_unsent"] = counts["publish_dropped"]
        summary["dropped"]["events_unwritten"] = counts["output_unwritten"]
        for sink in keepers:
            sink.summarise(summary)

    def _emit(self, event: Event) -> None:
        self.stats["events"] += 1
        for sink in self.sinks:
            sink.emit(event)

    def _end_open(self, src: _Source) -> None:
        """End the source's open tracks with its last checkpoint's ``best`` events (``worker_lost``)."""
        for ev in src.open.values():
            self._emit(ev)
            self.stats["worker_lost_tracks"] += 1
        src.open = {}

    def _failover(self, index: int, why: str) -> None:
        """Worker ``index`` died: end its open tracks from the last checkpoint, start a replacement, resume."""
        names = [n for n, s in self.sources.items() if s.worker == index and not s.done]
        log.warning("fleet: worker %d lost (%s); resuming %s on a new worker", index, why, ", ".join(names) or "-")
        self.stats["restarts"] += 1
        try:  # a worker that stopped answering may still be running: never two runners on one source
            import ray

            ray.kill(self.workers[index], no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
        now = time.time()
        for n in names:
            src = self.sources[n]
            # its counters so far carry over to the replacement
            self._base[n] = self._add_counters(self._base.get(n, {}), self._source_stats.pop(n, {}))
            self._end_open(src)
            gap = max(now - src.checkpoint_at, 0.0)
            if src.spec.live:  # a camera does not wait: everything since the checkpoint is lost
                self.stats["gap_s"] += gap
                self.stats["gap_frames"] += int(round(gap * self.cfg.fleet.nominal_fps))
                start = src.last_pts + gap if src.spec.kind == "file" else 0.0
            else:  # a file resumes where the checkpoint was: nothing is skipped
                start = src.last_pts
            src.spec = dataclasses.replace(src.spec, start_s=start)
            src.checkpoint_at = now
        self._spawn(index)
        if names:
            self._start(index, names)

    def run(self, stop: threading.Event | None = None) -> int:
        """Run until every source ends (or ``stop``); returns the worst source exit code."""
        import ray

        stop = stop or threading.Event()
        started = time.monotonic()
        if not ray.is_initialized():
            before = signal.getsignal(signal.SIGTERM)
            # no address: a Ray of its own ("local"). Ray's own default joins the cluster started last on this
            # machine (/tmp/ray/ray_current_cluster), anyone's: a fleet run beside another Ray job joined that job's
            # cluster and died with a traceback when its actor could not be placed
            ray.init(address=self.cfg.fleet.address or "local", include_dashboard=False, log_to_driver=True,
                     configure_logging=False)
            if before is not None and threading.current_thread() is threading.main_thread():
                # ray.init installs a SIGTERM handler that exits with 15 wherever the loop is; the caller's (the
                # CLI's: set ``stop``, flush every track, exit 0) is put back
                signal.signal(signal.SIGTERM, before)
        try:
            try:
                for i in range(len(self.workers)):
                    self._spawn(i)
                    self._start(i, [n for n, s in self.sources.items() if s.worker == i])
            except ray.exceptions.RayTaskError as exc:
                # a model the config names cannot be built (a detector without its model_path, missing weights):
                # every worker would fail alike, so it is the user's mistake, said in one line
                if not isinstance(getattr(exc, "cause", None), (ValueError, OSError)):
                    raise
                log.error("%s", exc.cause)
                return 2
            while not stop.is_set() and not all(s.done for s in self.sources.values()):
                refs = {i: w.poll.remote() for i, w in enumerate(self.workers)}
                for i, ref in refs.items():
                    try:
                        self._handle(ray.get(ref, timeout=self.cfg.fleet.poll_timeout_s))
                    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
                        self._failover(i, type(exc).__name__)
                stop.wait(self.cfg.fleet.poll_s)
        finally:
            for i, w in enumerate(self.workers):
                if w is None:  # never spawned: an earlier worker failed to start
                    continue
                try:
                    self._handle(ray.get(w.stop.remote(), timeout=60))
                except Exception as exc:  # noqa: BLE001 - a dead worker at shutdown: its checkpoint stands
                    log.warning("fleet: worker %d did not stop cleanly (%s)", i, type(exc).__name__)
                    for src in self.sources.values():
                        if src.worker == i:
                            self._end_open(src)
                ray.kill(w, no_restart=True)
            self._write_summary(time.monotonic() - started)
            for sink in self.sinks:
                sink.close()
            if self.metrics is not None:
                self.metrics.close()
            log.info("fleet: %s", {k: v for k, v in self.stats.items() if k != "sources"})
        unwritten = delivery_counts(self.sinks)["output_unwritten"]
        if unwritten:  # as a single runner's run: events the output folder could not take fail the run
            log.error("%d event(s) could not be written to output.dir (events_unwritten in the summary)", unwritten)
        return max([s.code for s in self.sources.values()] + [1 if unwritten else 0])
