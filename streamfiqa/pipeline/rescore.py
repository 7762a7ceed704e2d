"""Keyframe re-scoring: the heavy tier, off the live path.

The fast tier scores every face. :class:`KeyframeSampler` picks, per track, the candidates
worth a heavy score: those that enter the track's fast top-``top_k``, one every ``period_s``
of stream time, and the track's best at its end. :class:`HeavyWorker` scores them in one
thread behind a bounded queue; when the queue is full the keyframe is skipped and counted,
so decoding and the fast tier never wait.

Fusion policy (one scale per track): a track keeps its top-K candidates by fast score (the
finalists). A heavy score is recorded beside the fast one. When the heavy tier has scored every
finalist, it ranks them; otherwise the fast tier does, and a heavy score is never compared with a
fast one. At a track's end every finalist without a heavy score is re-scored (the end keyframes)
and the ``best`` event waits up to ``end_wait_s`` for them; when the queue is full the fast order
stands. The event's ``quality.decided_by`` / ``tier`` say which scale ranked, and its
``candidates`` list is in that order with both scores.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from streamfiqa.events import Candidate

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One keyframe to re-score: which source and track, and the candidate."""

    source: int
    track_id: int
    cand: Candidate
    at_end: bool = False


class KeyframeSampler:
    """Decides which candidates go to the heavy tier.

    Args:
        top_k: re-score a candidate when it enters its track's fast top-``top_k``.
        period_s: also re-score one candidate every ``period_s`` seconds of stream time per track.
        at_end: re-score the track's best at its end if it has no heavy score yet.
        max_per_track: at most this many top/periodic keyframes per track (0 = no limit); the
            end keyframe is extra.
    """

    def __init__(self, top_k: int = 2, period_s: float = 2.0, at_end: bool = True, max_per_track: int = 0) -> None:
        self.top_k, self.period_s, self.at_end, self.max_per_track = top_k, period_s, at_end, max_per_track
        self._last: dict[tuple[int, int], float] = {}
        self._count: dict[tuple[int, int], int] = {}

    def wants(self, source: int, tid: int, cand: Candidate, rank: int | None) -> str | None:
        """Why ``cand`` (fast rank ``rank`` in its track, None if not kept) should be re-scored, or None."""
        key = (source, tid)
        if self.max_per_track and self._count.get(key, 0) >= self.max_per_track:
            return None
        last = self._last.get(key)
        reason = None
        if rank is not None and rank < self.top_k:
            reason = "top"
        elif self.period_s > 0 and (last is None or cand.pts - last >= self.period_s):
            reason = "periodic"
        if reason:
            self._last[key] = cand.pts
            self._count[key] = self._count.get(key, 0) + 1
        return reason

    def forget(self, source: int, tid: int) -> None:
        """Drop the state of an ended track."""
        self._last.pop((source, tid), None)
        self._count.pop((source, tid), None)


class HeavyWorker:
    """Runs a heavy scorer on :class:`Job` s in a background thread.

    Args:
        scorer: object with ``name`` and ``score(aligned) -> (N,)``.
        queue_size: jobs waiting at most; more are skipped.
        batch: jobs scored together when several are waiting.
        threads: torch intra-op threads (0 = leave as is); 1 keeps the heavy tier on one core so
            it does not slow the live path on small machines.
    """

    def __init__(self, scorer, queue_size: int = 16, batch: int = 8, threads: int = 0) -> None:
        self.scorer, self.name, self.batch, self.threads = scorer, scorer.name, batch, threads
        self._in: queue.Queue = queue.Queue(maxsize=max(queue_size, 1))
        self._out: queue.Queue = queue.Queue()
        self.submitted = self.skipped = self.done = self.failed = 0
        self.busy_s = 0.0
        self._want_threads = threads  # the worker's torch threads (drain lifts them while the live path is idle)
        self._busy_since: float | None = None  # when the batch in hand began (a waiting submit or drain: stuck?)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heavy-scorer", daemon=True)
        self._thread.start()

    def submit(self, job: Job, wait: float = 0.0) -> bool:
        """Queue ``job``; False (and counted as skipped) when the queue is full, or with ``wait`` > 0 (files:
        nothing is skipped, the caller waits for room instead) only when the worker has been on one batch for more
        than ``wait`` seconds (stuck) or has stopped."""
        while True:
            try:
                if wait:
                    self._in.put(job, timeout=0.1)
                else:
                    self._in.put_nowait(job)
                break
            except queue.Full:
                if not wait or self._stalled(wait):
                    self.skipped += 1
                    return False
        self.submitted += 1
        return True

    def _stalled(self, seconds: float) -> bool:
        """Whether the worker has been on one batch for more than ``seconds`` (stuck), or has stopped."""
        since = self._busy_since
        return not self._thread.is_alive() or (since is not None and time.monotonic() - since > seconds)

    def results(self) -> list[tuple[Job, float]]:
        """Finished jobs with their heavy scores (non-blocking)."""
        out = []
        while True:
            try:
                out.append(self._out.get_nowait())
            except queue.Empty:
                return out

    def drain(self, timeout: float, all_cores: bool = False, stall: bool = False) -> None:
        """Wait until every queued job is scored or ``timeout`` seconds pass (``stall``: however long the queue takes,
        unless the worker spends more than ``timeout`` seconds on one batch); ``all_cores`` lifts the thread limit
        meanwhile (the live path is idle then). Torch's thread count is per calling thread, so the worker sets it on
        itself."""
        if all_cores and self.threads:
            import os

            self._want_threads = os.cpu_count() or 1
        end = time.monotonic() + timeout
        while self._in.unfinished_tasks and not (self._stalled(timeout) if stall else time.monotonic() >= end):
            time.sleep(0.01)
        self._want_threads = self.threads

    def close(self) -> None:
        """Stop the thread (queued jobs are abandoned)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def stats(self) -> dict:
        """Counters: submitted, skipped (queue full), done, failed, queue depth, busy seconds."""
        return {"scorer": self.name, "submitted": self.submitted, "skipped": self.skipped, "done": self.done,
                "failed": self.failed, "queue": self._in.qsize(), "busy_s": round(self.busy_s, 2)}

    def _loop(self) -> None:
        applied = 0
        while not self._stop.is_set():
            try:
                jobs = [self._in.get(timeout=0.1)]
            except queue.Empty:
                continue
            if self._want_threads and self._want_threads != applied:  # this thread's own torch threads
                import torch

                applied = self._want_threads
                torch.set_num_threads(applied)
            while len(jobs) < self.batch:
                try:
                    jobs.append(self._in.get_nowait())
                except queue.Empty:
                    break
            t0 = time.perf_counter()
            self._busy_since = time.monotonic()
            try:
                scores = np.asarray(self.scorer.score(np.stack([j.cand.aligned for j in jobs])), np.float32)
                for job, s in zip(jobs, scores):
                    self._out.put((job, float(s)))
                self.done += len(jobs)
            except Exception:  # noqa: BLE001 - a bad batch must not kill the worker
                log.exception("heavy scorer %s failed on %d keyframes", self.name, len(jobs))
                self.failed += len(jobs)
                for job in jobs:
                    self._out.put((job, float("nan")))
            self.busy_s += time.perf_counter() - t0
            self._busy_since = None
            for _ in jobs:
                self._in.task_done()


class HeavyTier:
    """The heavy tier of one runner: which candidates it re-scores, and the ``best`` events that wait for it.

    A candidate is offered when the :class:`KeyframeSampler` wants it. When a track ends, every finalist without a
    heavy score goes out as an end keyframe and the track's ``best`` waits (:meth:`defer_ends`) until they are all
    back (:meth:`collect`) or its source finishes (:meth:`abandon`, after :meth:`drain`).

    Args:
        scorer: the heavy scorer.
        keyframes: the ``quality.keyframes`` section.
    """

    def __init__(self, scorer, keyframes) -> None:
        k = keyframes
        self.worker = HeavyWorker(scorer, k.queue_size, threads=k.threads)
        self.sampler = KeyframeSampler(k.top_k, k.period_s, k.at_end, k.max_per_track)
        self.end_wait_s = float(k.end_wait_s)
        self._waiting: dict[tuple[int, int], list] = {}  # (source, track id) → [track, end keyframes still out]
        #: Wait for room and for every keyframe instead of skipping (a run of files only: its results must not
        #: depend on timing; the runner sets it), unless the worker spends more than ``end_wait_s`` on one batch.
        self.wait = False

    @property
    def name(self) -> str:
        return self.worker.name

    @property
    def _submit_wait_s(self) -> float:
        """How long a submission may wait for room (:meth:`HeavyWorker.submit`): 0 unless :attr:`wait`."""
        return self.end_wait_s if self.wait else 0.0

    def offer(self, source: int, selector, assigned: dict) -> None:
        """One frame's candidates of ``source`` by track id: submit those the sampler wants."""
        for tid, cand in assigned.items():
            if self.sampler.wants(source, tid, cand, selector.rank(tid, cand)):
                self.worker.submit(Job(source, tid, cand), self._submit_wait_s)

    def defer_ends(self, source: int, selector, ended: list) -> list:
        """Send the unscored finalists of the ``ended`` tracks as end keyframes; returns the tracks whose ``best``
        can go now (nothing to wait for, or the queue was full)."""
        if not self.sampler.at_end:
            return ended
        now = []
        for track in ended:
            self.sampler.forget(source, track.track_id)
            todo = [c for c in selector.finalists(track.track_id) if not c.has_heavy]
            sent = sum(self.worker.submit(Job(source, track.track_id, c, True), self._submit_wait_s) for c in todo)
            if sent:
                self._waiting[(source, track.track_id)] = [track, sent]
            else:
                now.append(track)
        return now

    def collect(self) -> list[tuple[int, object]]:
        """Apply the heavy scores that came back; returns ``(source, track)`` for each ended track whose end
        keyframes are all back."""
        done = []
        for job, score in self.worker.results():
            job.cand.rescore(self.worker.name, score)
            key = (job.source, job.track_id)
            waiting = self._waiting.get(key) if job.at_end else None
            if waiting is not None:
                waiting[1] -= 1
                if waiting[1] <= 0:
                    del self._waiting[key]
                    done.append((job.source, waiting[0]))
        return done

    def waiting_ids(self, source: int) -> set[int]:
        """Ids of the ended tracks of ``source`` that wait for their end keyframes."""
        return {tid for s, tid in self._waiting if s == source}

    def drain(self, all_cores: bool = False) -> None:
        """Wait up to ``end_wait_s`` for the queued keyframes (with :attr:`wait`: for all of them, unless the worker
        stalls that long; ``all_cores``: the live path is idle)."""
        self.worker.drain(self.end_wait_s, all_cores=all_cores, stall=self.wait)

    def abandon(self, source: int) -> list:
        """The tracks of ``source`` still waiting: their ``best`` goes on the fast scale."""
        keys = [key for key in self._waiting if key[0] == source]
        return [self._waiting.pop(key)[0] for key in keys]

    def stats(self) -> dict:
        return self.worker.stats()

    def close(self) -> None:
        self.worker.close()
