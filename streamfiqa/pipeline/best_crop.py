"""Per-track selection of the best crops, and the events it raises."""
from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field

from streamfiqa.events import Candidate, Event
from streamfiqa.track.tracker import Track

log = logging.getLogger(__name__)


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


class EnrollSelector:
    """Collects K good, pose-diverse crops of one cooperative subject.

    The largest face of each frame is the subject. A candidate counts when its score is at
    least ``threshold`` and it passed the gates; it joins the set if its (yaw, pitch) is at
    least ``min_pose_delta`` degrees from every member, or replaces the worse member it is
    close to. When the set holds ``count`` crops, ``enrolled`` events are sent (one per crop).

    Args:
        count: crops to collect.
        threshold: lowest score a crop needs.
        min_pose_delta: degrees of yaw/pitch between any two collected crops.
    """

    def __init__(self, count: int = 3, threshold: float = 0.6, min_pose_delta: float = 8.0) -> None:
        if count < 1:
            raise ValueError(f"enroll.count: expected >= 1, found {count}")
        self.count, self.threshold, self.min_pose_delta = int(count), float(threshold), float(min_pose_delta)
        self.members: list[Candidate] = []
        self.best_seen = 0.0
        self.done = False

    def select(self, source_id: str, track_id: int | None, cand: Candidate | None) -> list[Event]:
        """Offer the subject's candidate of one frame; returns the ``enrolled`` events once complete."""
        if self.done or cand is None:
            return []
        self.best_seen = max(self.best_seen, cand.score)
        if not cand.passed or cand.score < self.threshold:
            return []
        pose = (cand.components["yaw"], cand.components["pitch"])
        near = [m for m in self.members if self._delta(m, pose) < self.min_pose_delta]
        if not near:
            self.members.append(cand)
        elif len(near) == 1 and cand.score > near[0].score:
            self.members[self.members.index(near[0])] = cand
        if len(self.members) < self.count:
            return []
        self.done = True
        chosen = sorted(self.members, key=lambda c: -c.score)[: self.count]
        summary = [c.summary() for c in chosen]
        return [Event("enrolled", source_id, track_id, c, {},
                      {"index": i, "count": self.count, "candidates": summary}) for i, c in enumerate(chosen)]

    def timeout_event(self, source_id: str, waited_s: float) -> Event:
        """The event sent when enrolment gave up."""
        msg = (f"enrollment timed out after {waited_s:.1f} s: {len(self.members)}/{self.count} pose-diverse "
               f"crops scored >= {self.threshold} (best score seen {self.best_seen:.3f})")
        log.warning("%s: %s", source_id, msg)
        return Event("enroll_timeout", source_id, None, None, {},
                     {"message": msg, "collected": len(self.members), "count": self.count})

    @staticmethod
    def _delta(m: Candidate, pose: tuple[float, float]) -> float:
        return max(abs(m.components["yaw"] - pose[0]), abs(m.components["pitch"] - pose[1]))
