"""Enrolment of one cooperative subject: K good, pose-diverse crops, or a timeout (``--pipeline enroll``)."""
from __future__ import annotations

import logging

import numpy as np

from streamfiqa.config import EnrollConfig
from streamfiqa.events import Candidate, Event
from streamfiqa.pipeline.track_pool import TrackPool, Typicality

log = logging.getLogger(__name__)


class EnrollSelector:
    """Collects K good, pose-diverse crops of one cooperative subject and enrols the most typical of them.

    The largest face of each frame is offered. The first crop accepted fixes the subject: a later one counts only when
    it is of the same track, or (another track: the subject left and came back, or the tracker lost them) when its FR
    embedding agrees with the subject's mean by ``same_person``; crops of anyone else are refused and counted in
    :attr:`other_person`. A candidate counts when its predicted utility (``Candidate.utility``) is at least
    ``threshold`` and it passed the gates (crops that scored enough but failed a tier-0 gate are counted per gate,
    :attr:`gates`); it joins a pool ranked as a
    track's faces are ranked for its best crop (:class:`~streamfiqa.pipeline.track_pool.TrackPool`, ``typical``:
    among the good-enough, sharp-enough faces the one most like the subject's other appearances first). Within one
    track the fast score ranks faces no better than chance (README, "The best crop on real video"), so the first
    crops above the threshold are not the ones to keep: for ``window_s`` of stream time after the first accepted crop
    the pool fills, then the ``count`` crops are taken in rank order, each at least ``min_pose_delta`` degrees of yaw
    or pitch from those taken before. With face measures a crop about to be taken is measured first and passed over
    when its eyes are shut (``eyes_open`` below ``eyes_closed``; counted in :attr:`eyes_shut`). Without ``count``
    pose-diverse crops by then, it goes on collecting. ``enrolled`` events are sent one per crop, each with its own
    track's id; they and ``enroll_timeout`` say how many crops were refused and why (``refused``).

    Args:
        count: crops to collect.
        threshold: lowest predicted utility a crop needs (``fiqa_fast``'s scale, whatever the fast scorer).
        min_pose_delta: degrees of yaw/pitch between any two collected crops.
        same_person: cosine (the tracker's embedding) a crop of another track needs to the subject's.
        measures: :class:`~streamfiqa.quality.expression.FaceMeasures` (None: crops are not measured).
        eyes_closed: with measures, the ``eyes_open`` below which a crop is refused (None: never).
        window_s: stream seconds to collect after the first accepted crop before choosing (0: choose as soon as
            ``count`` pose-diverse crops exist).
        typical: how typicality ranks the pool (:class:`~streamfiqa.pipeline.track_pool.Typicality`).
        pool: candidates kept (the best on the pool's scale, and a sample over time).
        rank: ``typical`` or ``fast`` (by the fast score alone), as ``selection.rank`` ranks a track's faces.
    """

    def __init__(self, count: int = 3, threshold: float = 0.6, min_pose_delta: float = 8.0,
                 same_person: float = 0.5, measures=None, eyes_closed: float | None = None, window_s: float = 0.0,
                 typical: Typicality | None = None, pool: int = 48, rank: str = "typical") -> None:
        if count < 1:
            raise ValueError(f"enroll.count: expected >= 1, found {count}")
        self.count, self.threshold, self.min_pose_delta = int(count), float(threshold), float(min_pose_delta)
        self.same_person, self.window_s = float(same_person), float(window_s)
        self.how, self.size, self.rank = typical or Typicality(), int(pool), rank
        self.pool: TrackPool | None = None  # the subject's accepted crops (from the first one on)
        self.tracks: dict[int, int | None] = {}  # id(candidate) → its track
        self.subject_tracks: set = set()
        self.subject: np.ndarray | None = None  # sum of the accepted crops' embeddings
        self.measures, self.eyes_closed = measures, eyes_closed
        self._shut: dict[int, tuple[Candidate, bool]] = {}  # id → (candidate, eyes shut): measured once, held
        self.other_person = 0
        self.gates: dict[str, int] = {}  # scored enough but failed a tier-0 gate: count per gate
        self.best_seen = 0.0
        self._tried = 0  # crops accepted when a full set was last looked for
        self.done = False

    @property
    def eyes_shut(self) -> int:
        """Crops passed over because their eyes were shut."""
        return sum(shut for _, shut in self._shut.values())

    def _is_subject(self, track_id: int | None, cand: Candidate) -> bool:
        if self.subject is None or track_id in self.subject_tracks:
            return True
        if cand.embedding is None:
            return False  # another track and nothing to compare: not taken for the subject
        mean = self.subject / max(float(np.linalg.norm(self.subject)), 1e-12)
        return float(cand.embedding @ mean) >= self.same_person

    def select(self, source_id: str, track_id: int | None, cand: Candidate | None) -> list[Event]:
        """Offer the subject's candidate of one frame; returns the ``enrolled`` events once complete."""
        if self.done or cand is None:
            return []
        self.best_seen = max(self.best_seen, cand.utility)
        if cand.utility < self.threshold:
            return []
        if not cand.passed:
            for gate in cand.failed_gates:
                self.gates[gate] = self.gates.get(gate, 0) + 1
            return []
        if not self._is_subject(track_id, cand):
            self.other_person += 1
            return []
        self.subject_tracks.add(track_id)
        if cand.embedding is not None:
            self.subject = cand.embedding.astype(np.float64) if self.subject is None else self.subject + cand.embedding
        if self.pool is None:
            self.pool = TrackPool(cand.pts, cand.pts, self.rank)
            if self.window_s > 0:
                log.info("%s: a first good crop at %.2f s; collecting for %.1f s before choosing %d", source_id,
                         cand.pts, self.window_s, self.count)
        self.pool.add(cand, self.size, self.how)
        self.tracks[id(cand)] = track_id
        if len(self.tracks) > 2 * self.size:  # forget the crops the bounded pool let go
            kept = {id(c) for c in self.pool.pool}
            self.tracks = {k: t for k, t in self.tracks.items() if k in kept}
        return self.tick(source_id, cand.pts)

    def tick(self, source_id: str, pts: float) -> list[Event]:
        """At stream time ``pts``: once ``window_s`` has passed since the first accepted crop, the ``enrolled`` events
        when the pool holds a full set (tried again only after a new crop joined: a subject who looked away after the
        window still enrols at once)."""
        if self.done or self.pool is None or pts - self.pool.first_pts < self.window_s \
                or self._tried == len(self.pool.times):
            return []
        self._tried = len(self.pool.times)
        return self.conclude(source_id)

    def chosen(self) -> list[Candidate]:
        """``count`` pose-diverse crops of the pool, best first: the best-ranked crop that leads a full set, the rest
        filled in rank order (those with shut eyes passed over); the longest set found when none is full."""
        ranked = self.pool.ranked(self.how) if self.pool is not None else []
        best: list[Candidate] = []
        for lead in ranked:
            if self._eyes_shut(lead):
                continue
            out = [lead]
            for cand in ranked:
                if len(out) == self.count:
                    break
                pose = (cand.components["yaw"], cand.components["pitch"])
                if cand is not lead and all(self._delta(m, pose) >= self.min_pose_delta for m in out) \
                        and not self._eyes_shut(cand):
                    out.append(cand)
            if len(out) == self.count:
                return out
            best = max(best, out, key=len)
        return best

    def conclude(self, source_id: str, chosen: list[Candidate] | None = None) -> list[Event]:
        """The ``enrolled`` events when the pool holds ``count`` pose-diverse crops (then done), else none
        (``chosen``: :meth:`chosen`, when the caller has it already)."""
        chosen = self.chosen() if chosen is None else chosen
        if len(chosen) < self.count:
            return []
        self.done = True
        summary = [c.summary() for c in chosen]
        return [Event("enrolled", source_id, self.tracks[id(c)], c, {},
                      {"index": i, "count": self.count, "candidates": summary, "refused": self.refused})
                for i, c in enumerate(chosen)]

    @property
    def refused(self) -> dict:
        """Crops that scored enough but were refused, by reason (``gates``: per tier-0 gate they failed)."""
        return {"other_person": self.other_person, "eyes_shut": self.eyes_shut, "gates": dict(self.gates)}

    def _eyes_shut(self, cand: Candidate) -> bool:
        """Whether ``cand``'s eyes are shut (measured once; its eyes and mouth join its components)."""
        if self.measures is None:
            return False
        if id(cand) not in self._shut:  # the candidate is held with it: its id is not reused meanwhile
            row = self.measures([cand])[0]
            shut = self.eyes_closed is not None and bool(np.isfinite(row[0]) and row[0] < self.eyes_closed)
            self._shut[id(cand)] = (cand, shut)
        return self._shut[id(cand)][1]

    def timeout_event(self, source_id: str, waited_s: float, collected: int | None = None,
                      reason: str = "timeout") -> Event:
        """The event sent when enrolment gave up (``collected``: how many crops :meth:`chosen` holds, when known;
        ``reason``: ``timeout``, or the source's end that cut it short: ``eof``, ``error``, ``shutdown``)."""
        collected = len(self.chosen()) if collected is None else collected
        how = {"timeout": "timed out", "eof": "ended with its source", "error": "ended with its source's error",
               "shutdown": "was stopped"}.get(reason, reason)
        msg = (f"enrollment {how} after {waited_s:.1f} s: {collected}/{self.count} pose-diverse "
               f"crops of predicted utility >= {self.threshold} (best seen {self.best_seen:.3f}; refused: "
               f"{self.other_person} of another person, {self.eyes_shut} with the eyes shut{self._gate_text()})")
        log.warning("%s: %s", source_id, msg)
        return Event("enroll_timeout", source_id, None, None, {},
                     {"message": msg, "reason": reason, "collected": collected, "count": self.count,
                      "refused": self.refused})

    def _gate_text(self) -> str:
        """The gates good-scoring crops failed, most often first (a crop may fail several: counts per gate)."""
        if not self.gates:
            return ""
        return "; gates they failed: " + ", ".join(f"{g} {n}x" for g, n in sorted(self.gates.items(),
                                                                                 key=lambda x: -x[1]))

    @staticmethod
    def _delta(m: Candidate, pose: tuple[float, float]) -> float:
        return max(abs(m.components["yaw"] - pose[0]), abs(m.components["pitch"] - pose[1]))


class Enrolment:
    """Drives one source's :class:`EnrollSelector` frame by frame and decides when enrolment ends.

    Args:
        cfg: the ``enroll`` section (count, threshold, pose spread, collection window, timeout).
        source_id: the source it enrols from.
        measures, eyes_closed: crops with their eyes shut are refused (:class:`EnrollSelector`).
        typical, rank: how the collected crops are ranked (the ``selection`` section's, as a track's faces are for
            its best crop).
    """

    def __init__(self, cfg: EnrollConfig, source_id: str, measures=None, eyes_closed: float | None = None,
                 typical: Typicality | None = None, rank: str = "typical") -> None:
        self.selector = EnrollSelector(cfg.count, cfg.threshold, cfg.min_pose_delta, measures=measures,
                                       eyes_closed=eyes_closed, window_s=cfg.window_s, typical=typical, rank=rank)
        self.timeout_s, self.source_id = float(cfg.timeout_s), source_id
        self.first_pts: float | None = None

    def step(self, pts: float, sizes: np.ndarray, assignments: list, candidate) -> tuple[list[Event], str | None]:
        """Offer one frame's subject (its largest face) and say whether enrolment ended.

        Args:
            pts: the frame's stream time.
            sizes: the sizes of its faces (the largest is the subject).
            assignments: ``(track_id, face index)`` pairs of the frame.
            candidate: builds face ``d``'s :class:`Candidate`.

        Returns:
            The events to emit, and ``"enrolled"`` or ``"timeout"`` when enrolment ended at this frame (else None).
        """
        if self.first_pts is None:
            self.first_pts = pts
        events: list[Event] = []
        if len(sizes):
            subject = int(np.argmax(sizes))
            tid = next((t for t, d in assignments if d == subject), None)
            events = self.selector.select(self.source_id, tid, candidate(subject))
        events = events or self.selector.tick(self.source_id, pts)  # the window may end on a frame without them
        if self.selector.done:
            log.info("%s: enrolled %d crops", self.source_id, self.selector.count)
            return events, "enrolled"
        waited = pts - self.first_pts
        if waited >= self.timeout_s:
            last = self.give_up(pts)
            return events + last, "enrolled" if self.selector.done else "timeout"
        return events, None

    def give_up(self, last_pts: float, reason: str = "timeout") -> list[Event]:
        """Time is up or the source ended (``reason``, as :meth:`EnrollSelector.timeout_event` takes it): the
        ``enrolled`` events when ``count`` pose-diverse crops were collected (the window cut short), else the
        ``enroll_timeout`` event (none once enrolled)."""
        if self.selector.done:
            return []
        chosen = self.selector.chosen()  # ranked once: the pool's typicality and face measures are not cheap
        events = self.selector.conclude(self.source_id, chosen)
        if events:
            log.info("%s: enrolled %d crops", self.source_id, self.selector.count)
            return events
        waited = 0.0 if self.first_pts is None else last_pts - self.first_pts
        return [self.selector.timeout_event(self.source_id, waited, len(chosen), reason)]
