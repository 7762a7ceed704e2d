"""The best-crop decision, in one place: which faces may be published (the gates), which a track keeps (its
finalists), on which scale they are ranked, and the ``best`` / ``update`` events that carry the winner.

1. A face of a frame becomes a :class:`~streamfiqa.events.Candidate` (:meth:`ScoredFrame.candidate`): it passed when
   every tier-0 gate holds and its fast score reaches ``quality.min_score``.
2. A track keeps its top-K passing candidates by fast score (its finalists) and, apart, its best failed one.
3. The heavy tier may re-score finalists (:mod:`streamfiqa.pipeline.rescore`); when it has scored every finalist
   it ranks them, else the fast tier does: one scale per track, never a mix.
4. A track's ``best`` event carries its top finalist, or the best failed candidate (``gates_passed: false``) when
   none passed.
"""
from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field

import numpy as np

from streamfiqa.events import Candidate, Event
from streamfiqa.quality.tier0 import Quality
from streamfiqa.track.tracker import Track
from streamfiqa.types import Crops, Faces, Frame

log = logging.getLogger(__name__)


@dataclass
class ScoredFrame:
    """One frame's faces with everything measured about them.

    Attributes:
        frame: the frame.
        faces: its detections.
        crops: their aligned and display crops.
        quality: their tier-0 components and gates.
        scores: scorer name → ``(N,)`` scores (``tier0`` always; the fast scorer's when it ran on this frame).
        embeddings: ``(N, D)`` unit-norm FR embeddings (the tracker's), or None.
    """

    frame: Frame
    faces: Faces
    crops: Crops
    quality: Quality
    scores: dict
    embeddings: np.ndarray | None = None

    def candidate(self, d: int, decided_by: str, min_score: float | None, embedding_model: str = "") -> Candidate:
        """Face ``d`` as a candidate ranked by ``decided_by``'s score; it fails the ``min_score`` gate below
        ``min_score`` (None: no such gate)."""
        passed, reasons = bool(self.quality.passed[d]), self.quality.reasons[d]
        if min_score is not None and decided_by in self.scores and self.scores[decided_by][d] < min_score:
            passed, reasons = False, [*reasons, "min_score"]
        f, faces = self.frame, self.faces
        return Candidate(
            float(self.scores[decided_by][d]), decided_by, {k: float(v[d]) for k, v in self.scores.items()},
            self.quality.row(d), passed, reasons, f.index, f.pts, f.wallclock, faces.boxes[d], faces.landmarks[d],
            float(faces.scores[d]), self.crops.aligned[d], self.crops.display[d],
            embedding=None if self.embeddings is None else self.embeddings[d], embedding_model=embedding_model)


@dataclass
class _TrackBest:
    first_pts: float
    last_pts: float
    hits: int = 0
    top: list = field(default_factory=list)  # passing candidates, best first
    fallback: Candidate | None = None        # best candidate that failed a gate
    emitted: float | None = None              # fast score of the last update sent

    def add(self, cand: Candidate, k: int) -> None:
        if cand.passed:
            keys = [-c.fast_score for c in self.top]
            self.top.insert(bisect.bisect_right(keys, -cand.fast_score), cand)
            del self.top[k:]
        elif self.fallback is None or cand.fast_score > self.fallback.fast_score:
            self.fallback = cand

    @property
    def heavy_ranked(self) -> bool:
        """Whether the heavy tier has scored every finalist: then it ranks them, else the fast tier does
        (one scale per track: a heavy score is never compared with a fast one)."""
        return bool(self.top) and all(c.has_heavy for c in self.top)

    @property
    def best(self) -> Candidate | None:
        """The best finalist on the track's scale (see :attr:`heavy_ranked`)."""
        if not self.top:
            return None
        if self.heavy_ranked:
            return max(self.top, key=lambda c: c.heavy_score)
        return self.top[0]

    def ranked(self) -> list[Candidate]:
        """The finalists shown on the track's scale, best first."""
        heavy = self.heavy_ranked
        for c in self.top:
            c.rank_on(heavy)
        if self.fallback is not None:
            self.fallback.rank_on(False)
        return sorted(self.top, key=lambda c: -c.score)


class BestSelector:
    """Keeps each track's best K candidates; ``best`` on track end, optional early ``update``.

    Args:
        top_k: candidates kept per track (listed in the ``best`` event).
        emit_updates: send ``update`` events for live tracks (CCTV early alerts).
        min_dwell_s: a track must have lived this long (stream time) before its first update.
        update_margin: a later update needs a best score this much above the last one sent.
    """

    def __init__(self, top_k: int = 3, emit_updates: bool = False, min_dwell_s: float = 1.0,
                 update_margin: float = 0.05) -> None:
        if top_k < 1:
            raise ValueError(f"top_k: expected >= 1, found {top_k}")
        self.top_k, self.emit_updates = int(top_k), bool(emit_updates)
        self.min_dwell_s, self.update_margin = float(min_dwell_s), float(update_margin)
        self._tracks: dict[int, _TrackBest] = {}

    def rank(self, tid: int, cand: Candidate) -> int | None:
        """Position of ``cand`` in its track's kept candidates (0 = best), None when not kept."""
        st = self._tracks.get(tid)
        return next((i for i, c in enumerate(st.top) if c is cand), None) if st else None

    def best_of(self, tid: int) -> Candidate | None:
        """The candidate a ``best`` event for ``tid`` would carry now."""
        st = self._tracks.get(tid)
        return (st.best or st.fallback) if st else None

    def finalists(self, tid: int) -> list[Candidate]:
        """The track's kept candidates by fast score (what the end keyframes re-score)."""
        st = self._tracks.get(tid)
        return list(st.top) if st else []

    def select(self, source_id: str, pts: float, assigned: dict[int, Candidate], confirmed: set[int],
               ended: list[Track], dropped: list[int]) -> list[Event]:
        """Take one frame's candidates by track id and return the events they raise.

        Args:
            source_id: the source of the frame.
            pts: the frame's stream time in seconds.
            assigned: candidate of each track seen in this frame.
            confirmed: ids of tracks currently confirmed.
            ended: tracks that ended at this step (they get their ``best`` event).
            dropped: ids of tentative tracks that ended unconfirmed (forgotten silently).
        """
        events = []
        for tid, cand in assigned.items():
            st = self._tracks.setdefault(tid, _TrackBest(pts, pts))
            st.last_pts, st.hits = pts, st.hits + 1
            st.add(cand, self.top_k)
            if self.emit_updates and tid in confirmed and st.best is not None \
                    and pts - st.first_pts >= self.min_dwell_s \
                    and (st.emitted is None or st.best.fast_score >= st.emitted + self.update_margin):
                ranked = st.ranked()
                st.emitted = st.best.fast_score
                events.append(Event("update", source_id, tid, st.best, self._facts(st, None),
                                    {"candidates": [c.summary() for c in ranked]}))
        for tid in dropped:
            self._tracks.pop(tid, None)
        for track in ended:
            events.extend(self._end(source_id, track.track_id, track.end_reason))
        return events

    def snapshot(self, source_id: str, tids: set[int], reason: str) -> list[Event]:
        """The ``best`` event each of the open tracks ``tids`` would get if it ended now with ``reason``
        (the tracks stay open): what a fan-in publishes for them if this selector's process dies."""
        events = []
        for tid in sorted(tids):
            st, cand = self._tracks.get(tid), self.best_of(tid)
            if st is not None and cand is not None:
                events.append(Event("best", source_id, tid, cand, self._facts(st, reason),
                                    {"candidates": [c.summary() for c in st.ranked()]}))
        return events

    def _end(self, source_id: str, tid: int, reason: str | None) -> list[Event]:
        cand = self.best_of(tid)
        st = self._tracks.pop(tid, None)
        if cand is None:
            return []
        ranked = st.ranked()
        return [Event("best", source_id, tid, cand, self._facts(st, reason),
                      {"candidates": [c.summary() for c in ranked]})]

    @staticmethod
    def _facts(st: _TrackBest, reason: str | None) -> dict:
        return {"first_pts": round(st.first_pts, 4), "last_pts": round(st.last_pts, 4), "hits": st.hits,
                "end_reason": reason}
