"""The stages a runner runs, built from config by :func:`streamfiqa.pipeline.build.build_stages`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamfiqa.align import Aligner
from streamfiqa.detect import Detector
from streamfiqa.detect.regions import RegionDetector
from streamfiqa.pipeline.best_crop import ScoredFrame
from streamfiqa.pipeline.embed import FROM_SCORER
from streamfiqa.pipeline.rescore import HeavyTier
from streamfiqa.quality.tier0 import QualityAssessor


@dataclass
class Stages:
    """What the runner runs.

    Attributes:
        detector: the face detector; ``regions`` wraps it when ``detector.full_every`` > 1.
        aligner: aligned and display crops.
        assessor: tier-0 components and gates.
        scorer: the fast scorer (None: tier-0 only).
        min_score: the ``min_score`` gate on the fast score (None: no gate).
        embedder: the faces' embeddings (the tracker's appearance, typicality, splits): ``"scorer"`` (the fast
            scorer's own), an FR model, or None (:func:`streamfiqa.pipeline.embed.face_embedder`).
        embedding_model: the name those embeddings carry in events.
        utility: the model that predicts each face's utility beside a fast scorer that does not (the floors' and
            bands' scale), or None (:func:`streamfiqa.pipeline.embed.utility_scorer`).
        event_embedder: embeds published crops with another FR model (``publish.embedding_fr``), or None.
        heavy: the heavy tier, or None.
        regions: region detection around known faces (``detector.full_every`` > 1), or None.
        appearance: whether the tracker is given the embeddings (``tracker.appearance`` not off).
    """

    detector: Detector
    aligner: Aligner
    assessor: QualityAssessor
    scorer: object = None
    min_score: float | None = None
    embedder: object = None
    embedding_model: str = ""
    event_embedder: object = None
    heavy: HeavyTier | None = None
    regions: RegionDetector | None = None
    appearance: bool = True
    utility: object = None

    @property
    def utility_name(self) -> str:
        """The score that is a face's predicted utility (:attr:`utility`'s, else the fast scorer's own)."""
        model = self.utility if self.utility is not None else self.scorer
        return getattr(model, "name", "")

    def score(self, fast: list[ScoredFrame], every: list) -> None:
        """Score the faces of the ``fast`` frames in one fast-tier batch (their scores and, when the scorer embeds for
        the tracker, their embeddings); beside a scorer that does not predict utility, give the same faces their
        predicted utility (:attr:`utility`; with no fast scorer, every frame's faces: each is a candidate); then embed
        with a separate FR model the frames of ``every`` (``(source, frame)`` pairs) that have none yet."""
        fast = [sf for sf in fast if len(sf.faces)]
        if self.scorer is not None and fast:
            self._run(self.scorer, fast, self.embedder == FROM_SCORER)
        if self.utility is not None:  # candidates: the fast tier's frames (every frame with tier 0 alone)
            todo = fast if self.scorer is not None else [sf for _, sf in every if len(sf.faces)]
            if todo:
                self._run(self.utility, todo, self.utility is self.embedder)
        if self.embedder not in (None, FROM_SCORER):
            for _, sf in every:
                if sf.embeddings is None and len(sf.faces):
                    sf.embeddings = self.embedder.embed(sf.crops.aligned)

    @staticmethod
    def _run(model, frames: list[ScoredFrame], embed: bool) -> None:
        """``model``'s scores of the faces of ``frames`` in one batch (and, ``embed``, their embeddings from the same
        pass)."""
        batch = np.concatenate([sf.crops.aligned for sf in frames])
        q, e = model.score_and_embed(batch) if embed else (model.score(batch), None)
        splits = np.cumsum([len(sf.faces) for sf in frames])[:-1]
        for sf, qk in zip(frames, np.split(np.asarray(q, np.float32), splits)):
            sf.scores[model.name] = qk
        if e is not None:
            for sf, ek in zip(frames, np.split(e, splits)):
                sf.embeddings = ek
