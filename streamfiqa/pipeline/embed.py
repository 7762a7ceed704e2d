"""FR embeddings in the runtime: what gives the tracker its appearance, and what embeds published crops."""
from __future__ import annotations

import logging

import numpy as np

from streamfiqa.config import Config, ConfigError
from streamfiqa.events import Event

log = logging.getLogger(__name__)
#: The tracker's embeddings come from the fast scorer's own pass (``score_and_embed``).
FROM_SCORER = "scorer"


#: ``tracker.appearance`` values that name no FR model: the fast scorer's backbone, or none (YAML reads off as false).
TRACKER_WORDS = ("auto", "off", "false", "none")


def tracker_embedder(cfg: Config, scorer):
    """What gives the tracker its FR embeddings: :data:`FROM_SCORER` when the fast scorer has an FR backbone (no
    extra pass), a named FR model (``tracker.appearance``), or None (geometry alone)."""
    t = cfg.tracker
    if t.appearance in TRACKER_WORDS[1:]:  # off (YAML reads a bare off as false)
        return None
    if t.appearance == "auto":
        if scorer is not None and hasattr(scorer, "score_and_embed"):
            return FROM_SCORER
        log.info("tracker: the fast scorer has no FR backbone; tracking by geometry alone "
                 "(set tracker.appearance to an FR model name to add appearance)")
        return None
    from streamfiqa.models.fr import create_fr

    return create_fr(t.appearance, **t.appearance_args)


def embedding_name(embedder, scorer) -> str:
    """The model name the tracker's embeddings carry in events."""
    if embedder == FROM_SCORER:
        return f"student:{scorer.name}"
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


def event_embedder(cfg: Config, tracker) -> EventEmbedder | None:
    """The embedder of published crops (``publish.embedding`` or the cross-camera merge need them): None when
    neither is on, or when the tracker's own embeddings serve (``publish.embedding_fr: auto``)."""
    if not (cfg.publish.embedding or cfg.persons.enabled):
        return None
    if cfg.publish.embedding_fr == "auto":
        if tracker is None:
            raise ConfigError("config key 'publish.embedding_fr': auto means the tracker's embedding, found "
                              "none (tracker.appearance is off and the fast scorer has no FR backbone); "
                              "name an FR model instead, e.g. facenet")
        return None
    from streamfiqa.models.fr import create_fr

    return EventEmbedder(create_fr(cfg.publish.embedding_fr, **cfg.publish.embedding_fr_args))
