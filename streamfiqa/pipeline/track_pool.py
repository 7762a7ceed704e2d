"""A track's kept candidates and how they are ranked: by typicality (the face most like the person's other good
appearances) or by quality score; the change point where a track's appearance turns into another person's."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streamfiqa.events import Candidate


@dataclass(frozen=True)
class Typicality:
    """How ``rank: typical`` ranks a track's faces (fit on the development half of the real clips; README).

    A face is **eligible** when its predicted utility (``Candidate.utility``: the fast score of a scorer that predicts
    utility, else ``fiqa_fast``'s beside it) is within ``quality_band`` of the track's best and its sharpness (the
    tier-0 variance of the Laplacian) is at least ``sharpness`` × the sharpest such face's: a heavily degraded or
    blurred face is never the pick, whatever it looks like. The track's **appearance** is the mean embedding of its
    eligible faces (over a time-spread sample of at most ``history`` faces), and an eligible face's **typicality** is the
    cosine of its embedding to it: the face most like the person's other good appearances wins.

    Attributes:
        quality_band: on the predicted utility's scale (``fiqa_fast``'s: a cosine).
        sharpness: a fraction of the sharpest eligible face's sharpness.
        min_faces: embedded faces a track needs before typicality ranks it (below, the fast score does).
        history: faces sampled (evenly over the track) for its appearance.
    """

    quality_band: float = 0.2
    sharpness: float = 0.5
    min_faces: int = 5
    history: int = 512


@dataclass
class TrackPool:
    """One track's kept candidates and what they are ranked against.

    ``pool`` holds the passing candidates kept: the ``size`` best on the track's scale, plus an even sample over time
    of a third as many (so that each part of a track split later keeps candidates of its own); ``seen`` samples every
    face the track was given (passing a gate or not, evenly over time: the stride doubles when it is full) as
    ``(embedding, sharpness, utility, pts)``.
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
    best_utility: float = -np.inf  # the best predicted utility of its faces (the face floor's)
    times: list = field(default_factory=list)  # stream time of every face given
    spread: list = field(default_factory=list)  # (n, candidate): the even sample over time of the passing ones
    passed: int = 0
    spread_stride: int = 1
    merged: list = field(default_factory=list)  # tracks merged into this one: {track_id, first_pts, last_pts}
    nested: list = field(default_factory=list)  # stream time of each face whose box lay inside a bigger face's box

    def add(self, cand: Candidate, size: int, how: Typicality) -> None:
        self.times.append(cand.pts)
        self.best_utility = max(self.best_utility, cand.utility)
        emb = cand.embedding
        if emb is not None and np.all(np.isfinite(emb)):
            if self.embedded % self.stride == 0:
                self.seen.append((np.asarray(emb, np.float32), sharpness(cand), cand.utility, cand.pts))
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
        seen = sorted(self.seen, key=lambda s: s[3])  # a merged track's faces came in after the others
        emb = np.stack([e for e, *_ in seen])
        csum, total = np.cumsum(emb, 0), emb.sum(0)
        best = None
        for k in range(min_faces, len(emb) - min_faces + 1):
            a, b = csum[k - 1], total - csum[k - 1]
            cos = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
            if (best is None or cos < best[1]) and seen[k][3] > seen[0][3]:
                best = (seen[k][3], cos)
        return best

    def part(self, start: float, end: float) -> "TrackPool":
        """The faces of this track with ``start <= pts < end`` as a track of their own."""
        inside = lambda pts: start <= pts < end  # noqa: E731
        times = [x for x in self.times if inside(x)]
        seen = [s for s in self.seen if inside(s[3])]
        new = TrackPool(min(times), max(times), self.rank, self.top_k, len(times),
                         [c for c in self.pool if inside(c.pts)], None, None, seen, self.stride, len(seen) * self.stride,
                         max([u for _, _, u, _ in seen] + [c.utility for c in self.pool if inside(c.pts)]
                             or [-np.inf]), times)
        new.spread = [(m, c) for m, c in self.spread if inside(c.pts)]
        new.merged = [m for m in self.merged if m["first_pts"] < end and m["last_pts"] >= start]
        new.nested = [x for x in self.nested if inside(x)]
        if self.fallback is not None and inside(self.fallback.pts):
            new.fallback = self.fallback
        return new

    def typical(self, how: Typicality) -> bool:
        """Whether typicality ranks this track now (``rank: typical``, enough embedded faces, every pooled face
        embedded)."""
        return (self.rank == "typical" and self.embedded >= how.min_faces and bool(self.seen)
                and all(c.embedding is not None for c in self.pool))

    def _eligible(self, utility: np.ndarray, sharp: np.ndarray, how: Typicality) -> np.ndarray:
        floor = self.best_utility - how.quality_band
        good = utility >= floor
        ref = max([s for s, u in zip(sharp, utility) if u >= floor] + [s for _, s, u, _ in self.seen if u >= floor]
                  or [0.0])
        return good & (sharp >= how.sharpness * ref)

    def appearance(self, how: Typicality) -> np.ndarray:
        """The unit mean embedding of the track's eligible faces (of all sampled faces when none is)."""
        emb = np.stack([e for e, *_ in self.seen])
        ok = self._eligible(np.array([u for _, _, u, _ in self.seen]), np.array([s for _, s, _, _ in self.seen]), how)
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
            ok = self._eligible(np.array([x.utility for x in self.pool]), np.array([sharpness(x) for x in self.pool]),
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


def sharpness(cand: Candidate) -> float:
    return float(cand.components.get("sharpness", 0.0))
