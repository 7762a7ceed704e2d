"""One person across cameras: merge the ``best`` events of several sources that show the same person.

A stage at the fan-in (after the runner, or after the cluster's fan-in): every event passes through to the
sinks unchanged; each ``best`` event that carries an FR embedding is also matched against the persons seen
in the last ``window_s`` seconds (cosine of its embedding to the person's mean embedding ≥ ``threshold``).
A person is closed ``window_s`` after its last sighting (or when the run ends) and published as one
``person`` event: the best crop over all its sightings, and the list of sightings (source, track, time,
score).

The threshold is a cosine of the embedding model's space; ``eval --fr student`` writes the one at FMR 1e-3
into ``calibration.json`` (``fr_threshold``), which ``persons.threshold`` can name
(:func:`streamfiqa.quality.calibration.person_threshold`).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from streamfiqa.events import Event
from streamfiqa.pipeline.embed import face_embedding_model

log = logging.getLogger(__name__)

@dataclass
class _Person:
    pid: int
    sightings: list = field(default_factory=list)  # best events, in arrival order
    total: np.ndarray | None = None                 # sum of the unit embeddings
    last: float = 0.0                               # wallclock of the latest sighting

    @property
    def centroid(self) -> np.ndarray:
        return self.total / max(float(np.linalg.norm(self.total)), 1e-12)

    def add(self, event: Event, emb: np.ndarray) -> None:
        self.sightings.append(event)
        self.total = emb.copy() if self.total is None else self.total + emb
        self.last = max(self.last, float(event.candidate.wallclock))


class PersonMerger:
    """Sink stage that forwards every event and adds one ``person`` event per person across sources.

    Args:
        sinks: where events (and ``person`` events) go.
        threshold: cosine of two embeddings above which they are the same person.
        window_s: a person is closed this long after its last sighting (wallclock of the frames).
        clock: wall clock (tests pass their own).
    """

    def __init__(self, sinks: list, threshold: float = 0.5, window_s: float = 60.0,
                 clock=time.time) -> None:
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(f"persons.threshold: expected a cosine in [-1, 1], found {threshold}")
        self.sinks, self.threshold, self.window_s, self.clock = sinks, float(threshold), float(window_s), clock
        self._open: list[_Person] = []
        self._next = 1
        self._lock = threading.Lock()
        self.stats = {"sightings": 0, "persons": 0, "merged": 0, "without_embedding": 0}

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.emit(event)
        closed = []
        with self._lock:
            if event.kind == "best" and event.candidate is not None:
                self._add(event)
            closed = self._expire(self.clock())
        for person in closed:
            self._publish(person)

    def _add(self, event: Event) -> None:
        emb = event.candidate.embedding
        if emb is None or not np.all(np.isfinite(emb)):
            self.stats["without_embedding"] += 1
            return
        emb = np.asarray(emb, np.float32) / max(float(np.linalg.norm(emb)), 1e-12)
        self.stats["sightings"] += 1
        best, sim = None, -2.0
        for person in self._open:
            s = float(person.centroid @ emb)
            if s > sim:
                best, sim = person, s
        if best is None or sim < self.threshold:
            best = _Person(self._next)
            self._next += 1
            self._open.append(best)
        else:
            self.stats["merged"] += 1
        best.add(event, emb)

    def _expire(self, now: float) -> list[_Person]:
        done = [p for p in self._open if now - p.last > self.window_s]
        self._open = [p for p in self._open if now - p.last <= self.window_s]
        return done

    def _publish(self, person: _Person) -> None:
        top = max(person.sightings, key=lambda e: e.candidate.fast_score)
        sightings = [{"source": e.source_id, "track_id": e.track_id, "pts": round(e.candidate.pts, 4),
                      "wallclock": round(e.candidate.wallclock, 3), "fast_score": round(e.candidate.fast_score, 5)}
                     for e in person.sightings]
        event = Event("person", top.source_id, top.track_id, top.candidate,
                      track={"first_wallclock": min(s["wallclock"] for s in sightings),
                             "last_wallclock": max(s["wallclock"] for s in sightings)},
                      extra={"person_id": person.pid, "sources": sorted({s["source"] for s in sightings}),
                             "sightings": sightings})
        self.stats["persons"] += 1
        for sink in self.sinks:
            sink.emit(event)

    def flush(self) -> None:
        """Publish every person still open (the run's end; the sinks stay open)."""
        with self._lock:
            closed, self._open = self._open, []
        for person in closed:
            self._publish(person)
        log.info("persons: %d sightings → %d persons (%d merged, %d without an embedding)",
                 self.stats["sightings"], self.stats["persons"], self.stats["merged"],
                 self.stats["without_embedding"])

    def close(self) -> None:
        """Publish every person still open, then close the sinks."""
        self.flush()
        for sink in self.sinks:
            sink.close()


def embedding_model(cfg) -> str:
    """The name the crops' embeddings will carry under config ``cfg`` (what the merge's threshold is for)."""
    if cfg.publish.embedding_fr != "auto":
        return cfg.publish.embedding_fr
    return face_embedding_model(cfg)
