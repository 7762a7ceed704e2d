"""Candidates (one scored face) and the events published about tracks (schema version 1)."""
from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

SCHEMA_VERSION = 1
EVENT_KINDS = ("best", "update", "enrolled", "enroll_timeout", "person")
#: ``quality.tier`` of an event: which scale ranked the track's finalists.
TIERS = ("fast", "heavy", "track")


@dataclass
class Candidate:
    """One face of one frame with its crops and scores.

    Attributes:
        score: the score selection ranks by (higher = better).
        decided_by: name of the scorer that produced ``score`` (``tier0`` or a learned one).
        scores: every scorer's raw score by name.
        components: tier-0 components by name.
        passed: True when every tier-0 gate held.
        failed_gates: names of the gates that failed.
        embedding: the crop's unit-norm FR embedding when the run computes one (tracking appearance), else
            None; published only when ``publish.embedding`` is on (it is a biometric template).
        embedding_model: the FR model that produced ``embedding``.
        typicality: cosine of ``embedding`` to its track's mean embedding when the track was last ranked (NaN before).
        image: the file name of the photo the face is in, for an image folder's frames (empty for video).
        utility: the face's predicted recognition utility (a cosine, ``fiqa_fast``'s scale): what selection's and
            enrolment's floors and bands are set on, whatever scorer ranks (:func:`~streamfiqa.quality.scorers.
            on_utility_scale`); the fast score itself when the fast scorer predicts utility (NaN given: that).
    """

    score: float
    decided_by: str
    scores: dict
    components: dict
    passed: bool
    failed_gates: list
    frame_index: int
    pts: float
    wallclock: float
    box: np.ndarray
    landmarks: np.ndarray
    det_score: float
    aligned: np.ndarray
    display: np.ndarray
    tier: int = 0
    fast_score: float = float("nan")
    fast_name: str = ""
    heavy_score: float = float("nan")
    heavy_name: str = ""
    embedding: np.ndarray | None = None
    embedding_model: str = ""
    typicality: float = float("nan")
    image: str = ""
    utility: float = float("nan")

    def __post_init__(self) -> None:
        if np.isnan(self.fast_score):
            self.fast_score = float(self.score)
        if np.isnan(self.utility):
            self.utility = self.fast_score
        self.fast_name = self.fast_name or self.decided_by

    @property
    def has_heavy(self) -> bool:
        """Whether the heavy tier has scored this candidate."""
        return bool(np.isfinite(self.heavy_score))

    def rescore(self, name: str, score: float) -> None:
        """Record a heavy score (kept beside the fast one; :meth:`rank_on` picks the scale shown)."""
        self.scores[name] = float(score)
        if np.isfinite(score):
            self.heavy_score, self.heavy_name = float(score), name

    def rank_on(self, scale: str, key: float) -> None:
        """Show this candidate on its track's scale: ``score`` becomes ``key`` and ``decided_by`` / ``tier`` say which
        scale it is (``typicality``, ``heavy`` or ``fast``)."""
        self.score = float(key)
        if scale == "typicality":
            self.decided_by, self.tier = "typicality", 2
        elif scale == "heavy" and self.has_heavy:
            self.decided_by, self.tier = self.heavy_name, 1
        else:
            self.score, self.decided_by, self.tier = self.fast_score, self.fast_name, 0
        if np.isfinite(self.typicality):
            self.scores["typicality"] = self.typicality

    def summary(self) -> dict:
        """Short description used in candidate lists."""
        out = {"frame_index": self.frame_index, "pts": round(self.pts, 4), "score": round(self.score, 5),
               "decided_by": self.decided_by, "fast_score": round(self.fast_score, 5)}
        if self.image:
            out["image"] = self.image
        if self.has_heavy:
            out["heavy_score"] = round(self.heavy_score, 5)
        if np.isfinite(self.typicality):
            out["typicality"] = round(self.typicality, 5)
        for name in ("eyes_open", "mouth_open"):  # measured on a track's leading faces (quality.face_measures)
            if name in self.components:
                out[name] = self.components[name]
        return out


@dataclass
class Event:
    """Something worth telling subscribers about a track.

    Attributes:
        kind: one of :data:`EVENT_KINDS`.
        source_id: source the track belongs to.
        track_id: id of the track, unique within its source (None for source-level events).
        candidate: the crop the event carries (None for ``enroll_timeout``).
        track: track facts (first/last pts, hits, end reason).
        extra: kind-specific fields (candidates list, enrolment index, message).
    """

    kind: str
    source_id: str
    track_id: int | None
    candidate: Candidate | None
    track: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    _encoded: tuple | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"Event.kind: expected one of {', '.join(EVENT_KINDS)}, found {self.kind!r}")

    @property
    def topic(self) -> str:
        return f"face.{self.kind}.{self.source_id}"

    def metadata(self, embedding: bool = False) -> dict:
        """The JSON metadata frame of the message (schema version 1, see README).

        Args:
            embedding: include the crop's FR embedding (compact: float16, base64; :func:`decode_embedding`).
        """
        meta = {"schema": SCHEMA_VERSION, "event": self.kind, "source": self.source_id,
                "track_id": self.track_id, "created": round(self.created, 3)}
        c = self.candidate
        if c is not None:
            h, w = c.display.shape[:2]
            meta.update({
                "frame_index": c.frame_index, **({"image": c.image} if c.image else {}),
                "pts": round(c.pts, 4), "wallclock": round(c.wallclock, 3),
                "box": [round(float(v), 1) for v in c.box],
                "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in c.landmarks],
                "det_score": round(float(c.det_score), 4),
                "quality": {"score": round(float(c.score), 5), "decided_by": c.decided_by,
                            "tier": TIERS[c.tier],
                            "scores": {k: round(float(v), 5) if np.isfinite(v) else None
                                       for k, v in c.scores.items()},
                            "components": c.components, "gates_passed": bool(c.passed),
                            "failed_gates": list(c.failed_gates)},
                "crops": {"display": [w, h], "aligned": [112, 112]},
            })
            if embedding and c.embedding is not None:
                e = np.asarray(c.embedding, np.float16)
                meta["embedding"] = {"model": c.embedding_model, "dim": int(e.size), "dtype": "float16",
                                     "b64": base64.b64encode(e.tobytes()).decode("ascii")}
        if self.track:
            meta["track"] = self.track
        meta.update(self.extra)
        return meta

    def encoded_crops(self, jpeg_quality: int = 90) -> tuple[bytes, bytes]:
        """Display crop as JPEG and aligned crop as PNG (empty bytes when there is no crop)."""
        if self._encoded is None:
            if self.candidate is None:
                self._encoded = (b"", b"")
            else:
                ok1, jpg = cv2.imencode(".jpg", self.candidate.display, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
                ok2, png = cv2.imencode(".png", self.candidate.aligned)
                if not (ok1 and ok2):
                    raise RuntimeError("could not encode the crops of an event")
                self._encoded = (jpg.tobytes(), png.tobytes())
        return self._encoded


def decode_embedding(meta: dict) -> np.ndarray | None:
    """The unit-norm float32 embedding of an event's metadata (None when it carries none)."""
    e = meta.get("embedding")
    if not e:
        return None
    v = np.frombuffer(base64.b64decode(e["b64"]), np.dtype(e.get("dtype", "float16"))).astype(np.float32)
    if v.size != int(e["dim"]):
        raise ValueError(f"embedding: expected {e['dim']} values, found {v.size}")
    return v / max(float(np.linalg.norm(v)), 1e-12)
