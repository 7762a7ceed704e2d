"""The best-crop decision, in one place: which faces may be published (the gates), which a track keeps, on which
scale they are ranked, and the ``best`` / ``update`` events that carry the winner.

1. A face of a frame becomes a :class:`~streamfiqa.events.Candidate` (:meth:`ScoredFrame.candidate`): it passed when
   every tier-0 gate holds, its fast score reaches ``quality.min_score`` and its frame was not decoded from a damaged
   stretch of the stream (:attr:`~streamfiqa.types.Frame.damaged`).
2. A track keeps passing candidates and, apart, its best failed one (:class:`~streamfiqa.pipeline.track_pool.
   TrackPool`), ranked by typicality (default) or by quality score: one scale per track, never a mix.
3. At its end a track holding two people is split, a second track of a person already tracked in the same frames
   merges into that one, and a track with no recognisable face is rejected (both counted).
4. A track ranked by typicality has its leading candidates re-ranked by a second recogniser's typicality
   (:mod:`streamfiqa.quality.second_look`; FaceNet by default).
5. With face measures, the track's leading candidates get ``eyes_open``, ``mouth_open`` and ``face_presence``
   components (:mod:`streamfiqa.quality.expression`); eyes less open than the leaders' median cost a little, and one
   with its eyes shut goes behind all equally eligible ones with them open.
6. A track's ``best`` event carries its top candidate, or the best failed one (``gates_passed: false``) when none
   passed.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import logging
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from streamfiqa.config import RANKINGS
from streamfiqa.events import Candidate, Event
from streamfiqa.pipeline.track_pool import TrackPool, Typicality
from streamfiqa.quality.expression import by_eyes, ineligible
from streamfiqa.quality.tier0 import Quality
from streamfiqa.track.matching import nested
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
        full: with region detection, whether the whole frame was detected (else only windows around known faces);
            None without region detection.
        cut: whether the frame starts a new shot (the runner decides it before tracking).
    """

    frame: Frame
    faces: Faces
    crops: Crops
    quality: Quality
    scores: dict
    embeddings: np.ndarray | None = None
    full: bool | None = None
    cut: bool = False

    def candidate(self, d: int, decided_by: str, min_score: float | None, embedding_model: str = "",
                  utility: str = "") -> Candidate:
        """Face ``d`` as a candidate ranked by ``decided_by``'s score; it fails the ``min_score`` gate below
        ``min_score`` (None: no such gate). ``utility`` names the score that is its predicted utility (the floors'
        scale), when it is not ``decided_by``'s."""
        passed, reasons = bool(self.quality.passed[d]), self.quality.reasons[d]
        if min_score is not None and decided_by in self.scores and self.scores[decided_by][d] < min_score:
            passed, reasons = False, [*reasons, "min_score"]
        if self.frame.damaged:  # decoded from a damaged stretch: the face may be the decoder's guesses
            passed, reasons = False, [*reasons, "damaged"]
        f, faces = self.frame, self.faces
        return Candidate(
            float(self.scores[decided_by][d]), decided_by, {k: float(v[d]) for k, v in self.scores.items()},
            self.quality.row(d), passed, reasons, f.index, f.pts, f.wallclock, faces.boxes[d], faces.landmarks[d],
            float(faces.scores[d]), self.crops.aligned[d], self.crops.display[d],
            embedding=None if self.embeddings is None else self.embeddings[d], embedding_model=embedding_model,
            image=f.name, utility=float(self.scores[utility][d]) if utility in self.scores else float("nan"))


#: Workers of :func:`track_finisher`.
FINISH_WORKERS = 2


def track_finisher(workers: int = FINISH_WORKERS) -> ThreadPoolExecutor:
    """The threads that end tracks beside the frame loop (:class:`BestSelector`'s ``finisher``: second look and face
    measures). Torch's intra-op thread count is the calling thread's own: each worker takes its share of half the
    cores, one thread on 2 or 3 (measured there: two one-thread workers end a clip's open tracks in half the time
    one two-thread worker did, spinning against neither each other nor the frame loop; README, "Speed"); on
    larger machines the other half stays with the frame loop, a choice not measured here."""
    import os

    threads = max(1, (os.cpu_count() or 1) // (2 * workers))

    def own_torch_threads() -> None:
        import torch

        torch.set_num_threads(threads)

    return ThreadPoolExecutor(workers, "finish", initializer=own_torch_threads)


class BestSelector:
    """Keeps each track's best candidates; ``best`` on track end, optional early ``update``.

    Ranking (``rank``): ``typical`` ranks a track's faces by **typicality**, the cosine of the face's FR embedding (the
    tracker's) to the track's mean embedding: the face most like the person's other appearances is the one a
    recogniser matches best to them. On 29 real clips of the development half it published a face at the 80th–85th
    percentile of its track by utility under three recognisers, where the fast quality score alone published at the
    46th–48th (README, "The best crop on real video"). ``fast`` ranks by the fast quality score (and the heavy tier's
    when it scored every finalist). Tracks with fewer than ``min_faces`` embedded faces, or without embeddings, rank by fast score.

    Args:
        top_k: finalists listed in the ``best`` event (and re-scored by the heavy tier at the end).
        emit_updates: send ``update`` events for live tracks (CCTV early alerts).
        min_dwell_s: a track must have lived this long (stream time) before its first update.
        update_margin: a later update needs a new best whose key is this much above the last one sent.
        rank: ``typical`` or ``fast`` (:data:`RANKINGS`).
        pool: passing candidates kept per track (the least typical, or lowest fast score, goes first).
        typical: how typicality ranks (:class:`Typicality`).
        new_id: gives a new track id (the tracker's); with it, a track whose faces show two people is split.
        split_below: the cosine of the mean embeddings of a track's faces before and after its change point below
            which it holds two people. On the development clips (the embedded student's embedding) no real track went
            below 0.62 and 99.9 % of different people's 10-face means stayed below 0.54.
        face_floor: a track none of whose faces reaches this predicted utility (``Candidate.utility``) is not
            published and counted in :attr:`rejected` as ``unrecognisable``: a hand, a pattern, or a face too occluded,
            blurred or cut off to be matched. Detections that were no faces scored at most 0.21 on the development
            clips, half of all faces over 0.5 (None: every track is published).
        same_person: a track that ends while another track of the same source was open in the same time span and
            whose appearance agrees with that one's at least this much (cosine of the mean embeddings) is the same
            person seen twice (a double detection, a fork): its candidates join the other track, nothing is published
            for it, and it is counted in :attr:`rejected` as ``duplicate``. On the development clips no two different
            people's track means came above 0.54 (None: never).
        face_check: with a floor, asks a second opinion on the display crops of a track under the floor (its best by
            fast score first); the track is published when it answers True (:class:`~streamfiqa.quality.faceness.
            FaceCheck`: a second detector). None: the floor alone decides.
        measures: measures the eyes and mouth of a track's ``look`` leading candidates when it ends
            (:class:`~streamfiqa.quality.expression.FaceMeasures`), adding them to their components. None: not measured.
        eyes_weight: with measures, a leading candidate ranked by typicality whose ``eyes_open`` is short of the
            leaders' median loses ``eyes_weight`` × the shortfall (:func:`~streamfiqa.quality.expression.by_eyes`;
            0.1 fit on the development half).
        eyes_closed: with measures, a leading candidate whose ``eyes_open`` is below this goes behind all others
            (None: no such rule; 0.2: shut eyes measured ≤ 0.16 and open ones ≥ 0.2 on a development clip's blinks).
        look: leading candidates measured or re-ranked per track (at least ``top_k``).
        nested_share: a track whose box lay inside a bigger face's box of the same frame
            (:func:`~streamfiqa.track.matching.nested`) in at least this share of its frames is a part of that face (a
            nose and mouth found at a smaller scale): not published and counted in :attr:`rejected` as ``face_part``.
            On the development half such a track was nested in all its frames, a newcomer pasted over a face in at
            most 0.26 of them and every other track in none (None: never).
        second_look: re-ranks a typicality-ranked track's ``look`` leading candidates by a second FR model's
            typicality when it ends (:class:`~streamfiqa.quality.second_look.SecondLook`; FaceNet re-ranking the 8
            leaders raised the published crop's mean percentile by 2–4 points on the development half). None: the
            tracker's embedding alone ranks.
        finisher: runs the end of each published track — the second look and the face measures of its leading
            candidates, a few hundred milliseconds — off the caller's thread (an executor of one worker, shared by
            every source's selector); its ``best`` event comes out of :meth:`finished` once made, the events of ended
            tracks always in the order the tracks ended. None: :meth:`select` returns it as the track
            ends. What is decided at the end (split, merge, face part, face-ness) is decided at once either way.
        max_finishing: with a finisher, ended tracks that may wait for it; one more waits for the oldest (the
            caller stalls instead of memory growing).
    """

    def __init__(self, top_k: int = 3, emit_updates: bool = False, min_dwell_s: float = 1.0,
                 update_margin: float = 0.05, rank: str = "typical", pool: int = 24,
                 typical: Typicality | None = None, new_id=None, split_below: float | None = 0.5,
                 face_floor: float | None = None, face_check=None, same_person: float | None = 0.6,
                 measures=None, eyes_weight: float = 0.1, eyes_closed: float | None = 0.2, look: int = 8,
                 second_look=None, nested_share: float | None = 0.8, finisher: Executor | None = None,
                 max_finishing: int = 32) -> None:
        if top_k < 1 or pool < top_k:
            raise ValueError(f"selection: expected 1 <= top_k <= pool, found top_k {top_k}, pool {pool}")
        if rank not in RANKINGS:
            raise ValueError(f"selection.rank: expected one of {', '.join(RANKINGS)}, found {rank!r}")
        self.top_k, self.emit_updates = int(top_k), bool(emit_updates)
        self.min_dwell_s, self.update_margin = float(min_dwell_s), float(update_margin)
        self.rank_by, self.pool, self.how = rank, int(pool), typical or Typicality()
        self.new_id, self.split_below, self.face_floor = new_id, split_below, face_floor
        self.face_check, self.same_person = face_check, same_person
        self.measures, self.eyes_weight, self.eyes_closed = measures, float(eyes_weight), eyes_closed
        self.look, self.second_look = max(int(look), self.top_k), second_look
        self.nested_share = nested_share
        if max_finishing < 1:
            raise ValueError(f"selection: expected max_finishing >= 1, found {max_finishing}")
        self.finisher, self.max_finishing = finisher, int(max_finishing)
        #: Tracks not published, by reason.
        self.rejected: dict[str, int] = {}
        self._tracks: dict[int, TrackPool] = {}
        # ended tracks with the finisher, oldest first: (its best event to come, the event it would be without the
        # second look and the measures: what a snapshot shows for it meanwhile)
        self._finishing: collections.deque[tuple[Future, Event]] = collections.deque()

    @property
    def finishing(self) -> int:
        """Ended tracks whose ``best`` event the finisher is still making."""
        return len(self._finishing)

    def rank(self, tid: int, cand: Candidate) -> int | None:
        """Position of ``cand`` among its track's finalists (0 = best), None when it is not one."""
        return next((i for i, c in enumerate(self.finalists(tid)) if c is cand), None)

    def best_of(self, tid: int) -> Candidate | None:
        """The candidate a ``best`` event for ``tid`` would carry now."""
        st = self._tracks.get(tid)
        if st is None:
            return None
        top = st.ranked(self.how, 1)
        return top[0] if top else st.fallback

    def finalists(self, tid: int) -> list[Candidate]:
        """The track's top ``top_k`` candidates on its scale (what the end keyframes re-score)."""
        st = self._tracks.get(tid)
        return st.ranked(self.how, self.top_k) if st else []

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
            st = self._tracks.setdefault(tid, TrackPool(pts, pts, self.rank_by, self.top_k))
            st.last_pts, st.hits = pts, st.hits + 1
            st.add(cand, self.pool, self.how)
            if self.nested_share is not None and nested(cand.box, [c.box for o, c in assigned.items() if o != tid]):
                st.nested.append(pts)
            if self.emit_updates and tid in confirmed and pts - st.first_pts >= self.min_dwell_s:
                events += self._update(source_id, tid, st)
        for tid in dropped:
            self._tracks.pop(tid, None)
        for track in ended:
            events.extend(self._end(source_id, track.track_id, track.end_reason))
        return events

    def finished(self, wait: bool = False) -> list[Event]:
        """The ``best`` events the finisher has made, in the order their tracks ended (``wait``: every ended track's,
        once made: at a source's end nothing may stay behind)."""
        out = []
        while self._finishing and (wait or self._finishing[0][0].done()):
            out.append(self._finishing.popleft()[0].result())
        return out

    def _update(self, source_id: str, tid: int, st: TrackPool) -> list[Event]:
        """An ``update`` when the track's best is a new face whose key beats the last one sent by the margin."""
        ranked = st.ranked(self.how, self.top_k)
        if not ranked or ranked[0] is st.emitted:
            return []
        if st.emitted is not None and st.emitted in st.pool:
            last = float(st.keys(self.how)[st.pool.index(st.emitted)])
            if ranked[0].score < last + self.update_margin:
                return []
        st.emitted = ranked[0]
        return [Event("update", source_id, tid, ranked[0], self._facts(st, None),
                      {"candidates": [c.summary() for c in ranked]})]

    def snapshot(self, source_id: str, tids: set[int], reason: str) -> list[Event]:
        """The ``best`` event each of the open tracks ``tids`` would get if it ended now with ``reason``
        (the tracks stay open): what a fan-in publishes for them if this selector's process dies."""
        events = []
        for tid in sorted(tids):
            st, cand = self._tracks.get(tid), self.best_of(tid)
            if st is not None and cand is not None:
                events.append(Event("best", source_id, tid, cand, self._facts(st, reason),
                                    {"candidates": [c.summary() for c in st.ranked(self.how, self.top_k)]}))
        # ended tracks the finisher has not given back yet: as they would be without the second look and measures
        events += [pre for job, pre in list(self._finishing) if not job.done()]
        return events

    def _end(self, source_id: str, tid: int, reason: str | None) -> list[Event]:
        st = self._tracks.pop(tid, None)
        if st is None:
            return []
        parts = self._split(st, f"{source_id}: track {tid}")
        events = []
        for k, (part, part_id) in enumerate(zip(parts, [tid] + [self.new_id() for _ in parts[1:]])):
            if self.nested_share is not None and len(part.nested) >= self.nested_share * max(len(part.times), 1):
                self.rejected["face_part"] = self.rejected.get("face_part", 0) + 1
                log.info("%s: track %d lay inside a bigger face in %d of its %d frames (a part of that face): not "
                         "published", source_id, part_id, len(part.nested), len(part.times))
                continue
            twin = self._twin(part)
            if twin is not None:
                for cand in part.pool:
                    self._tracks[twin].add(cand, self.pool, self.how)
                # the tracker's id and time span of the faces merged in: a reader can tell which faces the event covers
                self._tracks[twin].merged += [{"track_id": tid, "first_pts": round(part.first_pts, 4),
                                               "last_pts": round(part.last_pts, 4)}] + part.merged
                self.rejected["duplicate"] = self.rejected.get("duplicate", 0) + 1
                log.info("%s: track %d is track %d's person in the same frames: merged into it", source_id, part_id,
                         twin)
                continue
            if not self._is_face(part):
                self.rejected["unrecognisable"] = self.rejected.get("unrecognisable", 0) + 1
                log.info("%s: track %d is no recognisable face (best predicted utility %.3f < %.3f%s): not "
                         "published", source_id, part_id, part.best_utility, self.face_floor,
                         f", and {self.face_check.name} found no face" if self.face_check is not None else "")
                continue
            looks = self.measures is not None or self.second_look is not None
            leaders = part.ranked(self.how, self.look if looks else self.top_k)
            if not leaders and part.fallback is None:
                continue
            facts = self._facts(part, reason if k == len(parts) - 1 else "split")
            extra = {"split_from": tid} if len(parts) > 1 else {}
            if part.merged:
                extra["merged"] = part.merged
            best = functools.partial(self._best, source_id, part_id, leaders, part.fallback, facts, extra)
            if self.finisher is None:
                events.append(best())
                continue
            if len(self._finishing) >= self.max_finishing:  # the finisher is behind: wait for the oldest
                events.append(self._finishing.popleft()[0].result())
            # the snapshot's stand-in holds copies: the finisher changes the leaders' scores while it works
            first = leaders[0] if leaders else part.fallback
            pre = Event("best", source_id, part_id,
                        dataclasses.replace(first, scores=dict(first.scores), components=dict(first.components)),
                        facts, {"candidates": [c.summary() for c in leaders[: self.top_k]], **extra})
            self._finishing.append((self.finisher.submit(best), pre))
        return events

    def _best(self, source_id: str, part_id: int, leaders: list[Candidate], fallback: Candidate | None,
              facts: dict, extra: dict) -> Event:
        """A track's ``best`` event from its leading candidates (measured and re-ranked first) or, with none, the
        best candidate that failed a gate."""
        ranked = self._measured(leaders)
        return Event("best", source_id, part_id, ranked[0] if ranked else fallback, facts,
                     {"candidates": [c.summary() for c in ranked], **extra})

    def _measured(self, ranked: list[Candidate]) -> list[Candidate]:
        """The ``top_k`` leading candidates: re-ranked by the second look (typicality ranking), then measured (and
        eyes shut last) when face measures are on."""
        if not ranked:
            return ranked
        out = {id(c): ineligible(c) for c in ranked}  # before the second look's keys replace the track's
        if self.second_look is not None and ranked[0].decided_by == "typicality":
            ranked = self.second_look(ranked, [out[id(c)] for c in ranked])
        if self.measures is None:
            return ranked[: self.top_k]
        return by_eyes(ranked, self.measures(ranked), self.eyes_weight, self.eyes_closed,
                       [out[id(c)] for c in ranked])[: self.top_k]

    def _twin(self, part: TrackPool) -> int | None:
        """An open track that lived in ``part``'s time span and looks like the same person, or None."""
        if self.same_person is None or not part.typical(self.how):
            return None
        mine = part.appearance(self.how)
        for oid, other in self._tracks.items():
            if other.typical(self.how) and other.first_pts <= part.last_pts and other.last_pts >= part.first_pts:
                if float(mine @ other.appearance(self.how)) >= self.same_person:
                    return oid
        return None

    def _is_face(self, part: TrackPool) -> bool:
        if self.face_floor is None or part.best_utility >= self.face_floor:
            return True
        if self.face_check is None:
            return False
        cands = sorted(part.pool + ([part.fallback] if part.fallback is not None else []),
                       key=lambda c: -c.fast_score)
        return bool(self.face_check([c.display for c in cands]))

    def _split(self, st: TrackPool, name: str) -> list[TrackPool]:
        """A track whose appearance changes to another person's (the means of its faces before and after the change
        point agree less than ``split_below``) as its parts, earliest first; each part is split again. ``name``
        says which track it is in the log."""
        if self.new_id is None or self.split_below is None:
            return [st]
        found = st.change_point(self.how.min_faces * 2)
        if found is None or found[1] >= self.split_below:
            return [st]
        t = found[0]
        first, second = st.part(-np.inf, t), st.part(t, np.inf)
        log.info("%s: its appearance changed at %.2f s (cosine %.2f of the means before and after): split, the "
                 "part after it published under a new track id", name, t, found[1])
        return self._split(first, name) + self._split(second, name)

    @staticmethod
    def _facts(st: TrackPool, reason: str | None) -> dict:
        return {"first_pts": round(st.first_pts, 4), "last_pts": round(st.last_pts, 4), "hits": st.hits,
                "end_reason": reason}
