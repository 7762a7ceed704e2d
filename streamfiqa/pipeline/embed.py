"""FR embeddings in the runtime: what gives faces theirs (the tracker's appearance, the typicality ranking, the split
of a two-person track), and what embeds published crops."""
from __future__ import annotations

import logging

import numpy as np

from streamfiqa.config import Config, ConfigError
from streamfiqa.events import Event

log = logging.getLogger(__name__)
#: The tracker's embeddings come from the fast scorer's own pass (``score_and_embed``).
FROM_SCORER = "scorer"


#: ``tracker.appearance`` values that name no FR model: the fast scorer's backbone, or none (config reads a YAML
#: ``off``, ``false`` or ``none`` as ``off``).
TRACKER_WORDS = ("auto", "off", "false", "none")
#: The FR model that embeds faces when the fast scorer has no backbone: the embedded fast student's.
FALLBACK = "student"


def _source(cfg: Config) -> str:
    """Where the faces' embeddings come from under ``cfg``, before any model loads: ``"named"`` (the FR model
    ``tracker.appearance`` names), ``"none"`` (``tracker.appearance`` off with ``selection.rank: fast``) or ``"own"``
    (the fast scorer's backbone, else the :data:`FALLBACK` student's); :func:`face_embedder` and
    :func:`face_embedding_model` both follow it."""
    if cfg.tracker.appearance not in TRACKER_WORDS:
        return "named"
    return "none" if appearance_off(cfg) and cfg.selection.rank != "typical" else "own"


def face_embedder(cfg: Config, scorer):
    """What gives every face its FR embedding: a named FR model (``tracker.appearance``), :data:`FROM_SCORER` when the
    fast scorer has an FR backbone (no extra pass), the embedded ``fiqa_fast`` student's backbone when it has none, or
    None.

    The embeddings are the tracker's appearance (unless ``tracker.appearance`` is off) and what selection ranks and
    checks by: the typicality ranking (``selection.rank: typical``), the split of a track that holds two people and
    the merge of one person's fragments. Without them the pick falls back to the fast score, at chance among a
    track's faces on real video (README, "The best crop on real video"): so a scorer without a backbone (``crop_iqa``,
    an official eDifFIQA checkpoint) gets ``fiqa_fast``'s backbone beside it, one more pass a face, and only
    ``tracker.appearance: off`` with ``selection.rank: fast`` leaves faces unembedded."""
    from streamfiqa.models.fr import create_fr

    source, t = _source(cfg), cfg.tracker
    if source == "named":
        return create_fr(t.appearance, **t.appearance_args)
    if source == "none":
        log.info("tracker.appearance off and selection.rank fast: faces are not embedded (tracking by geometry "
                 "alone, no split of a track that holds two people)")
        return None
    if scorer is not None and hasattr(scorer, "score_and_embed"):
        return FROM_SCORER
    uses = "" if appearance_off(cfg) else "the tracker's appearance and "
    log.info("the fast scorer %s has no FR backbone: faces are embedded by fiqa_fast's backbone for %sthe "
             "typicality ranking (one more pass a face; tracker.appearance=NAME names another FR model)",
             getattr(scorer, "name", "(none)"), uses)
    return create_fr(FALLBACK)


def utility_scorer(cfg: Config, scorer, embedder):
    """What gives every candidate its predicted utility, the scale of ``quality.min_face_score``,
    ``selection.quality_band`` and ``enroll.threshold`` (``fiqa_fast``'s: a cosine): None when the fast scorer's own
    score is one (:func:`~streamfiqa.quality.scorers.on_utility_scale`), or when no floor or band applies; else the
    faces' embedder when it is a student that predicts utility (its one pass gives both), else the ``fiqa_fast``
    student (one more pass a face). Before, another scorer's score was held against those numbers as if it were on
    that scale: ``crop_iqa`` scores a profile blurred past recognition 0.59, and such a track was published."""
    from streamfiqa.quality.scorers import create_scorer, on_utility_scale

    if on_utility_scale(scorer):
        return None
    if cfg.quality.min_face_score is None and cfg.selection.rank != "typical" and cfg.pipeline != "enroll":
        return None
    changed = _floors_set(cfg)
    if changed:  # until 2026-12-07 the README said to set them on another scorer's own scale
        log.warning("%s: read as a predicted utility (fiqa_fast's scale, a cosine), not on %s's own scale",
                    ", ".join(changed), getattr(scorer, "name", "tier0"))
    if hasattr(embedder, "score_and_embed") and on_utility_scale(embedder):
        log.info("the fast scorer %s does not predict utility: the embedding pass of %s gives each face its predicted "
                 "utility too, for quality.min_face_score, selection.quality_band and enroll.threshold",
                 getattr(scorer, "name", "(none)"), embedder.name)
        return embedder
    log.info("the fast scorer %s does not predict utility: fiqa_fast scores faces beside it for quality.min_face_score"
             ", selection.quality_band and enroll.threshold (one more pass a face)", getattr(scorer, "name", "(none)"))
    return create_scorer("fiqa_fast")


def _floors_set(cfg: Config) -> list[str]:
    """The floors and bands on the predicted utility that ``cfg`` sets away from their defaults, as ``key=value``."""
    from streamfiqa.config import EnrollConfig, QualityConfig, SelectionConfig

    out = []
    for key, value, default in (("quality.min_face_score", cfg.quality.min_face_score, QualityConfig.min_face_score),
                                ("selection.quality_band", cfg.selection.quality_band, SelectionConfig.quality_band),
                                ("enroll.threshold", cfg.enroll.threshold, EnrollConfig.threshold)):
        if value is not None and value != default:
            out.append(f"{key}={value}")
    return out


def face_embedding_model(cfg: Config) -> str:
    """The name the faces' embeddings will carry under ``cfg`` (:func:`embedding_name` before any model loads)."""
    source, t, scorer = _source(cfg), cfg.tracker, cfg.quality.scorer
    if source == "named":
        return f"student:{t.appearance_args.get('name', 'fiqa_fast')}" if t.appearance == FALLBACK else t.appearance
    if source == "none":
        return ""
    if scorer in ("fiqa_fast", "fiqa_heavy"):
        return f"student:{scorer}"
    if scorer == "student":  # a distil checkpoint's own name, known once it loads
        return "student"
    return "student:fiqa_fast"


def appearance_off(cfg: Config) -> bool:
    """Whether ``tracker.appearance`` is off: the tracker is not given the faces' embeddings (geometry alone)."""
    return str(cfg.tracker.appearance).lower() in TRACKER_WORDS[1:]


def embedding_name(embedder, scorer) -> str:
    """The model name the faces' embeddings carry in events (the fallback student's as the fast scorer's own)."""
    if embedder == FROM_SCORER:
        return f"student:{scorer.name}"
    if hasattr(embedder, "score_and_embed"):  # a student named as the FR model, or the fallback: the same embedding
        return f"student:{embedder.name}"
    return getattr(embedder, "name", "")


class EventEmbedder:
    """Gives the crops of events the embedding of one FR model (one batched run; once per crop).

    Args:
        fr: the FR model (``publish.embedding_fr``).
    """

    def __init__(self, fr) -> None:
        self.fr = fr

    def __call__(self, events: list[Event]) -> None:
        name = self.fr.name
        todo = [e.candidate for e in events if e.candidate is not None and e.candidate.embedding_model != name]
        todo = list({id(c): c for c in todo}.values())
        if todo:
            emb = self.fr.embed(np.stack([c.aligned for c in todo]))
            for c, v in zip(todo, emb):
                c.embedding, c.embedding_model = v.astype(np.float32), name


def event_embedder(cfg: Config, faces) -> EventEmbedder | None:
    """The embedder of published crops (``publish.embedding`` or the cross-camera merge need them): None when
    neither is on, or when the faces' own embeddings (``faces``: :func:`face_embedder`'s) serve
    (``publish.embedding_fr: auto``)."""
    if not (cfg.publish.embedding or cfg.persons.enabled):
        return None
    if cfg.publish.embedding_fr == "auto":
        if faces is None:
            raise ConfigError("config key 'publish.embedding_fr': auto means the faces' own embedding, found "
                              "none (tracker.appearance is off and selection.rank is fast); name an FR model "
                              "instead, e.g. facenet")
        return None
    from streamfiqa.models.fr import create_fr

    return EventEmbedder(create_fr(cfg.publish.embedding_fr, **cfg.publish.embedding_fr_args))
