"""Eyes and mouth of a track's finalists: named quality components measured with MediaPipe's face mesh and iris
networks (:mod:`streamfiqa.models.facemesh`), and how they rank a track's leading faces: a face whose
eyes are less open than its track's leading faces' median loses a little, and one with its eyes shut is never ahead
of one with them open.

Fit on the development half of the real clips (README, "The best crop on real video"): among the 8 faces most
typical of their track, ranking by ``typicality − 0.1 · max(0, median eyes_open − eyes_open)`` raised the published
crop's simulated mean percentile from 82.5 to 84.1 (in-sample), as much as a plain bonus ``+ 0.1 · eyes_open`` (84.2);
but blur smears the lids apart (blurred copies of three of the generated demo clip's four faces measure wider eyes
than their sharp frame), so only a shortfall from the track's usual eyes costs. The mouth did not help (an open
mouth of a speaker costs a recogniser little): it is measured and reported, not ranked on.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from streamfiqa.align import Aligner
from streamfiqa.events import Candidate
from streamfiqa.models.facemesh import IRIS_WEIGHTS, MEASURES, WEIGHTS, FaceMesh


class FaceMeasures:
    """Measures ``eyes_open``, ``mouth_open`` and ``face_presence`` (:data:`streamfiqa.models.facemesh.MEASURES`) of
    candidates, from their display crops.

    Args:
        display_margin: the margin the display crops were cut with (``align.display_margin``): where the face's box
            lies in them.
    """

    def __init__(self, display_margin: float = 0.4) -> None:
        for path in (WEIGHTS, IRIS_WEIGHTS):  # a broken install fails at start, not at the first track's end
            if not path.is_file():
                raise FileNotFoundError(f"face measures: expected the embedded {path.name} at {path}, found no file "
                                        "(reinstall streamfiqa, or set quality.face_measures=false)")
        self._display = Aligner(display_margin)  # where a display crop lies around its box
        #: Faces measured.
        self.measured = 0

    @staticmethod
    def _load() -> FaceMesh:
        return _embedded_mesh()  # torch and the two networks load at the first track's end, once a process

    def __call__(self, cands: Sequence[Candidate]) -> np.ndarray:
        """``(N, 3)`` measures of ``cands`` (NaN rows for a candidate without a display crop); each measured one gets
        them as components too (rounded, as events show them)."""
        out = np.full((len(cands), len(MEASURES)), np.nan, np.float32)
        crops, rows = [], []
        for k, c in enumerate(cands):
            if c.display is None or not getattr(c.display, "size", 0):
                continue
            crops.append(self._mesh_crop(c))
            rows.append(k)
        if crops:
            out[rows] = self._load().measure(np.stack(crops))
            with _LOCK:  # two finisher workers may measure two tracks of one source at once
                self.measured += len(crops)
        for c, row in zip(cands, out):
            c.components.update({name: round(float(v), 4) for name, v in zip(MEASURES, row) if np.isfinite(v)})
        return out

    def _mesh_crop(self, c: Candidate) -> np.ndarray:
        """The face mesh's crop, cut from the display crop: the display crop is a square of ``1 + 2·margin`` × the
        box's longer side centred on the box (align.Aligner.display_square), resized to its stored side."""
        x, y, side = self._display.display_square(c.box)
        scale = c.display.shape[0] / max(round(side), 1)
        origin = np.array([x, y])
        box = (np.asarray(c.box, np.float64)[:4].reshape(2, 2) - origin).ravel() * scale
        lm = None if c.landmarks is None else (np.asarray(c.landmarks, np.float64)[:, :2] - origin) * scale
        return FaceMesh.crop(c.display, box, lm)


_LOCK = threading.Lock()
_MESH: list[FaceMesh] = []


def _embedded_mesh() -> FaceMesh:
    """The embedded networks, loaded once a process: every camera's measures share them (stateless at inference,
    so two finisher workers may run them at once)."""
    with _LOCK:
        if not _MESH:
            _MESH.append(FaceMesh())
        return _MESH[0]


def ineligible(cand: Candidate) -> bool:
    """Whether a candidate ranked by typicality is outside its track's quality band or too soft: its key was lowered
    by 2 in :meth:`~streamfiqa.pipeline.track_pool.TrackPool.keys`."""
    return cand.decided_by == "typicality" and cand.score < cand.typicality - 1.0


def by_eyes(cands: list[Candidate], measures: np.ndarray, weight: float = 0.0, closed: float | None = None,
            ineligible_: list[bool] | None = None) -> list[Candidate]:
    """``cands`` (best first on their track's scale) re-ranked by their eyes: one ranked by typicality whose eyes are
    less open than the median of the measured ``cands`` loses ``weight`` × the shortfall (eyes wider than usual earn
    nothing: blur smears the lids apart), and those whose eyes are shut (``eyes_open`` below ``closed``) go behind all
    others that are as eligible (an ineligible face — outside the quality band or too soft, whose typicality key is
    lowered by 2 in :meth:`~streamfiqa.pipeline.track_pool.TrackPool.keys` — stays behind every eligible one, eyes
    or not; ``ineligible_`` tells which when the keys are no longer the track's, else :func:`ineligible` does).
    A candidate not measured keeps its key and counts as open."""
    eyes = measures[:, 0]
    ref = float(np.nanmedian(eyes)) if np.isfinite(eyes).any() else np.nan
    key = np.array([c.score - (weight * max(0.0, ref - e) if c.decided_by == "typicality" and np.isfinite(e) else 0.0)
                    for c, e in zip(cands, eyes)])
    shut = np.nan_to_num(eyes, nan=np.inf) < closed if closed is not None else np.zeros(len(cands), bool)
    out = [ineligible(c) for c in cands] if ineligible_ is None else list(ineligible_)
    order = sorted(range(len(cands)), key=lambda k: (out[k], bool(shut[k]), -key[k], k))
    return [cands[k] for k in order]
