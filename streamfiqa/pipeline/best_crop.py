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

import logging
from dataclasses import dataclass, field

import numpy as np

from streamfiqa.config import RANKINGS
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


@dataclass(frozen=True)
class Typicality:
    """How ``rank: typical`` ranks a track's faces (fit on the development half of the real clips; README).

    A face is **eligible** when its fast score is within ``quality_band`` of the track's best and its sharpness (the
    tier-0 variance of the Laplacian) is at least ``sharpness`` × the sharpest such face's: a heavily degraded or
    blurred face is never the pick, whatever it looks like. The track's **appearance** is the mean embedding of its
    eligible faces (over a time-spread sample of at most ``history`` faces), and an eligible face's **typicality** is the
    cosine of its embedding to it: the face most like the person's other good appearances wins.

    Attributes:
        quality_band: on the fast score's scale (``fiqa_fast``: a predicted cosine).
        sharpness: a fraction of the sharpest eligible face's sharpness.
        min_faces: embedded faces a track needs before typicality ranks it (below, the fast score does).
        history: faces sampled (evenly over the track) for its appearance.
    """

    quality_band: float = 0.2
    sharpness: float = 0.5
    min_faces: int = 5
    history: int = 512


@dataclass
class _TrackBest:
    """One track's kept candidates and what they are ranked against.

    ``pool`` holds the passing candidates kept: the ``size`` best on the track's scale, plus an even sample over time
    of a third as many (so that each part of a track split later keeps candidates of its own); ``seen`` samples every
    face the track was given (passing a gate or not, evenly over time: the stride doubles when it is full) as
    ``(embedding, sharpness, fast, pts)``.
    """

    first_pts: float
    last_pts: float
    rank: str = "typical"
    top_k: int = 3
    hits: int = 0
    pool: list = field(default_factory=list)
    fallback: Candidate | None = None         # best candidate that failed a gate (by fast score)
    emitted: Candidate | None = None          # the candidate of the last update sent
    seen: list = field(default_factory=list)
    stride: int = 1
    embedded: int = 0
    best_fast: float = -np.inf
    times: list = field(default_factory=list)  # stream time of every face given
    spread: list = field(default_factory=list)  # (n, candidate): the even sample over time of the passing ones
    passed: int = 0
    spread_stride: int = 1

    def add(self, cand: Candidate, size: int, how: Typicality) -> None:
        self.times.append(cand.pts)
        self.best_fast = max(self.best_fast, cand.fast_score)
        emb = cand.embedding
        if emb is not None and np.all(np.isfinite(emb)):
            if self.embedded % self.stride == 0:
                self.seen.append((np.asarray(emb, np.float32), _sharpness(cand), cand.fast_score, cand.pts))
                if len(self.seen) > how.history:
                    self.stride *= 2
                    self.seen = self.seen[::2]
            self.embedded += 1
        if not cand.passed:
            if self.fallback is None or cand.fast_score > self.fallback.fast_score:
                self.fallback = cand
            return
        self.pool.append(cand)
        n, self.passed = self.passed, self.passed + 1
        if n % self.spread_stride == 0:
            self.spread.append((n, cand))
            if len(self.spread) > max(size // 3, 1):
                self.spread_stride *= 2
                self.spread = [(m, c) for m, c in self.spread if m % self.spread_stride == 0]
        keep = {id(c) for _, c in self.spread}
        if len(self.pool) > size + len(keep):
            keys = np.array([k if id(c) not in keep else np.inf for k, c in zip(self.keys(how, heavy=False), self.pool)])
            del self.pool[int(np.argmin(keys))]

    def change_point(self, min_faces: int) -> tuple[float, float] | None:
        """Where the track's appearance changes most: ``(time, cosine)`` of the split of its sampled faces (both sides at
        least ``min_faces``) whose mean embeddings agree least; None when it is too short."""
        if len(self.seen) < 2 * min_faces:
            return None
        emb = np.stack([e for e, *_ in self.seen])
        csum, total = np.cumsum(emb, 0), emb.sum(0)
        best = None
        for k in range(min_faces, len(emb) - min_faces + 1):
            a, b = csum[k - 1], total - csum[k - 1]
            cos = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
            if best is None or cos < best[1]:
                best = (self.seen[k][3], cos)
        return best

    def part(self, start: float, end: float) -> "_TrackBest":
        """The faces of this track with ``start <= pts < end`` as a track of their own."""
        inside = lambda pts: start <= pts < end  # noqa: E731
        times = [x for x in self.times if inside(x)]
        seen = [s for s in self.seen if inside(s[3])]
        new = _TrackBest(min(times), max(times), self.rank, self.top_k, len(times),
                         [c for c in self.pool if inside(c.pts)], None, None, seen, self.stride, len(seen) * self.stride,
                         max([f for _, _, f, _ in seen] + [c.fast_score for c in self.pool if inside(c.pts)]
                             or [-np.inf]), times)
        new.spread = [(m, c) for m, c in self.spread if inside(c.pts)]
        if self.fallback is not None and inside(self.fallback.pts):
            new.fallback = self.fallback
        return new

    def typical(self, how: Typicality) -> bool:
        """Whether typicality ranks this track now (``rank: typical``, enough embedded faces, every pooled face
        embedded)."""
        return (self.rank == "typical" and self.embedded >= how.min_faces and bool(self.seen)
                and all(c.embedding is not None for c in self.pool))

    def _eligible(self, fast: np.ndarray, sharp: np.ndarray, how: Typicality) -> np.ndarray:
        good = fast >= self.best_fast - how.quality_band
        ref = max([s for s, f in zip(sharp, fast) if f >= self.best_fast - how.quality_band]
                  + [s for _, s, f, _ in self.seen if f >= self.best_fast - how.quality_band] or [0.0])
        return good & (sharp >= how.sharpness * ref)

    def appearance(self, how: Typicality) -> np.ndarray:
        """The unit mean embedding of the track's eligible faces (of all sampled faces when none is)."""
        emb = np.stack([e for e, *_ in self.seen])
        ok = self._eligible(np.array([f for _, _, f, _ in self.seen]), np.array([s for _, s, _, _ in self.seen]), how)
        mean = emb[ok].mean(0) if ok.any() else emb.mean(0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)

    def scale(self, how: Typicality) -> str:
        """The scale the finalists are ranked on: ``typicality`` (see :meth:`typical`), else ``heavy`` when the heavy
        tier scored every finalist, else ``fast``. One scale per track: a score of one scale is never compared with
        another's."""
        if self.typical(how):
            return "typicality"
        fin = sorted(self.pool, key=lambda c: -c.fast_score)[:self.top_k]
        return "heavy" if fin and all(c.has_heavy for c in fin) else "fast"

    def keys(self, how: Typicality, heavy: bool = True) -> np.ndarray:
        """Each pooled candidate's key on the track's scale (higher = better; an ineligible face ranks below every
        eligible one)."""
        scale = self.scale(how) if heavy else ("typicality" if self.typical(how) else "fast")
        if scale == "typicality":
            c = self.appearance(how)
            typ = np.array([float(x.embedding @ c) for x in self.pool])
            ok = self._eligible(np.array([x.fast_score for x in self.pool]), np.array([_sharpness(x) for x in self.pool]),
                                how)
            for x, v in zip(self.pool, typ):
                x.typicality = v
            return np.where(ok, typ, typ - 2.0)
        if scale == "heavy":
            return np.array([x.heavy_score if x.has_heavy else -np.inf for x in self.pool])
        return np.array([x.fast_score for x in self.pool])

    def ranked(self, how: Typicality, k: int | None = None) -> list[Candidate]:
        """The pooled candidates shown on the track's scale, best first (the top ``k``)."""
        if not self.pool:
            return []
        scale, keys = self.scale(how), self.keys(how)
        for x, key in zip(self.pool, keys):
            x.rank_on(scale, float(key))
        if self.fallback is not None:
            self.fallback.rank_on("fast", self.fallback.fast_score)
        order = np.argsort(-keys, kind="stable")
        return [self.pool[i] for i in order[:k]]


def _sharpness(cand: Candidate) -> float:
    return float(cand.components.get("sharpness", 0.0))


class BestSelector:
    """Keeps each track's best candidates; ``best`` on track end, optional early ``update``.

    Ranking (``rank``): ``typical`` ranks a track's faces by **typicality**, the cosine of the face's FR embedding (the
    tracker's) to the track's mean embedding: the face most like the person's other appearances is the one a
    recogniser matches best to them. On 29 real clips of the development half it published a face at the 80th–85th
    percentile of its track by utility under three recognisers, where the fast quality score alone published at the
    46th–48th (README, "Video protocol"). ``fast`` ranks by the fast quality score (and the heavy tier's when it scored
    every finalist). Tracks with fewer than ``min_faces`` embedded faces, or without embeddings, rank by fast score.

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
        face_floor: a track none of whose faces reaches this fast score (a predicted recognisability) is not
            published and counted in :attr:`rejected` as ``unrecognisable``: a hand, a pattern, or a face too occluded,
            blurred or cut off to be matched. Detections that were no faces scored at most 0.21 on the development
            clips, half of all faces over 0.5 (None: every track is published).
        face_check: with a floor, asks a second opinion on the display crops of a track under the floor (its best by
            fast score first); the track is published when it answers True (:class:`~streamfiqa.quality.faceness.
            FaceCheck`: a second detector). None: the floor alone decides.
    """

    def __init__(self, top_k: int = 3, emit_updates: bool = False, min_dwell_s: float = 1.0,
                 update_margin: float = 0.05, rank: str = "typical", pool: int = 24,
                 typical: Typicality | None = None, new_id=None, split_below: float | None = 0.5,
                 face_floor: float | None = None, face_check=None) -> None:
        if top_k < 1 or pool < top_k:
            raise ValueError(f"selection: expected 1 <= top_k <= pool, found top_k {top_k}, pool {pool}")
        if rank not in RANKINGS:
            raise ValueError(f"selection.rank: expected one of {', '.join(RANKINGS)}, found {rank!r}")
        self.top_k, self.emit_updates = int(top_k), bool(emit_updates)
        self.min_dwell_s, self.update_margin = float(min_dwell_s), float(update_margin)
        self.rank_by, self.pool, self.how = rank, int(pool), typical or Typicality()
        self.new_id, self.split_below, self.face_floor = new_id, split_below, face_floor
        self.face_check = face_check
        #: Tracks not published, by reason.
        self.rejected: dict[str, int] = {}
        self._tracks: dict[int, _TrackBest] = {}

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
            st = self._tracks.setdefault(tid, _TrackBest(pts, pts, self.rank_by, self.top_k))
            st.last_pts, st.hits = pts, st.hits + 1
            st.add(cand, self.pool, self.how)
            if self.emit_updates and tid in confirmed and pts - st.first_pts >= self.min_dwell_s:
                events += self._update(source_id, tid, st)
        for tid in dropped:
            self._tracks.pop(tid, None)
        for track in ended:
            events.extend(self._end(source_id, track.track_id, track.end_reason))
        return events

    def _update(self, source_id: str, tid: int, st: _TrackBest) -> list[Event]:
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
        return events

    def _end(self, source_id: str, tid: int, reason: str | None) -> list[Event]:
        st = self._tracks.pop(tid, None)
        if st is None:
            return []
        parts = self._split(st)
        events = []
        for k, (part, part_id) in enumerate(zip(parts, [tid] + [self.new_id() for _ in parts[1:]])):
            if not self._is_face(part):
                self.rejected["unrecognisable"] = self.rejected.get("unrecognisable", 0) + 1
                log.info("%s: track %d is no recognisable face (best fast score %.3f < %.3f%s): not published",
                         source_id, part_id, part.best_fast, self.face_floor,
                         f", and {self.face_check.name} found no face" if self.face_check is not None else "")
                continue
            ranked = part.ranked(self.how, self.top_k)
            cand = ranked[0] if ranked else part.fallback
            if cand is None:
                continue
            facts = self._facts(part, reason if k == len(parts) - 1 else "split")
            extra = {"candidates": [c.summary() for c in ranked]}
            if len(parts) > 1:
                extra["split_from"] = tid
            events.append(Event("best", source_id, part_id, cand, facts, extra))
        return events

    def _is_face(self, part: _TrackBest) -> bool:
        if self.face_floor is None or part.best_fast >= self.face_floor:
            return True
        if self.face_check is None:
            return False
        cands = sorted(part.pool + ([part.fallback] if part.fallback is not None else []),
                       key=lambda c: -c.fast_score)
        return bool(self.face_check([c.display for c in cands]))

    def _split(self, st: _TrackBest) -> list[_TrackBest]:
        """A track whose appearance changes to another person's (the means of its faces before and after the change
        point agree less than ``split_below``) as its parts, earliest first; each part is split again."""
        if self.new_id is None or self.split_below is None:
            return [st]
        found = st.change_point(self.how.min_faces * 2)
        if found is None or found[1] >= self.split_below:
            return [st]
        t = found[0]
        first, second = st.part(-np.inf, t), st.part(t, np.inf)
        log.info("a track's appearance changed at %.2f s (cosine %.2f of the means before and after): split", t,
                 found[1])
        return self._split(first) + self._split(second)

    @staticmethod
    def _facts(st: _TrackBest, reason: str | None) -> dict:
        return {"first_pts": round(st.first_pts, 4), "last_pts": round(st.last_pts, 4), "hits": st.hits,
                "end_reason": reason}
