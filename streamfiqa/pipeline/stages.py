"""The stages a runner runs, built from config by :func:`streamfiqa.pipeline.build.build_stages`."""
from __future__ import annotations

from dataclasses import dataclass

from streamfiqa.align import Aligner
from streamfiqa.detect import Detector
from streamfiqa.detect.regions import RegionDetector
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
        embedder: the tracker's embeddings: ``"scorer"`` (the fast scorer's own), an FR model, or None.
        embedding_model: the name those embeddings carry in events.
        event_embedder: embeds published crops with another FR model (``publish.embedding_fr``), or None.
        heavy: the heavy tier, or None.
        regions: region detection around known faces (``detector.full_every`` > 1), or None.
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
