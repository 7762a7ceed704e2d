"""Kalman + IoU + appearance multi-object tracker with ByteTrack's two-stage association.

Appearance (BoT-SORT / DeepSORT style), when the caller passes FR embeddings: each track keeps an
exponential moving average of the unit-norm embeddings of its confident faces; a geometric match is
refused when the face's cosine similarity to the track's embedding is below ``min_similarity`` (it
starts a new track instead of continuing someone else's), and appearance breaks geometric ties.
Re-identification: a lost track whose person reappears (cosine ≥ ``reid_similarity``) anywhere in the
frame within ``reid_window_s`` of stream time resumes with the same id; so does a track unmatched on this frame only
(at a low processed rate a face can move past the IoU gate between two frames), within reach.
"""
from __future__ import annotations

import collections
import enum
from dataclasses import dataclass, field

import numpy as np
from streamfiqa.track.kalman import KalmanBox
from streamfiqa.track.matching import iou_matrix, match
from streamfiqa.types import Faces


class TrackState(enum.Enum):
    """Life cycle: TENTATIVE → CONFIRMED ⇄ LOST → ENDED."""

    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"
    ENDED = "ended"


@dataclass
class Track:
    """One tracked face."""

    track_id: int
    kalman: KalmanBox
    state: TrackState = TrackState.TENTATIVE
    streak: int = 1
    end_reason: str | None = None
    feature: np.ndarray | None = None
    last_seen: float = 0.0
    last_box: np.ndarray | None = None  # the box of its last matched face
    last_embedding: np.ndarray | None = None  # and that face's embedding
    full_hits: int = 0                  # consecutive full-frame detections (region detection, tentative tracks)
    # how much its face's own pixels changed from frame to frame, last 25 (:func:`streamfiqa.io.shots.region_change`)
    changes: collections.deque = field(default_factory=lambda: collections.deque(maxlen=25), repr=False)
    _misses: int = field(default=0, repr=False)

    def usual_change(self) -> float | None:
        """The 90th percentile of its face's recent changes (at least 0.02, as a clip's own motion is); None before
        5 are known."""
        if len(self.changes) < 5:
            return None
        return max(float(np.quantile(self.changes, 0.9)), 0.02)

    def observe(self, embedding: np.ndarray | None, momentum: float) -> None:
        """Fold a confident face's unit-norm embedding into the track's appearance."""
        if embedding is None or not np.all(np.isfinite(embedding)):
            return
        if self.feature is None:
            self.feature = embedding.astype(np.float32)
        else:
            f = momentum * self.feature + (1 - momentum) * embedding
            self.feature = (f / max(float(np.linalg.norm(f)), 1e-9)).astype(np.float32)

    @property
    def box(self) -> np.ndarray:
        return self.kalman.box


@dataclass
class TrackUpdate:
    """Result of one tracker step.

    Attributes:
        assignments: ``(track_id, detection_index)`` for every detection that belongs to a
            track this frame, tentative ones included.
        ended: tracks that had been confirmed and ended at this step (``end_reason`` set).
        dropped: ids of tentative tracks that ended without ever being confirmed.
    """

    assignments: list[tuple[int, int]]
    ended: list[Track]
    dropped: list[int] = field(default_factory=list)


class Tracker:
    """ByteTrack-style tracker for one source.

    Args:
        high_thresh: detections at or above this score are matched first.
        low_thresh: detections between this and ``high_thresh`` only extend existing tracks.
        new_track_thresh: lowest score that starts a new track.
        match_iou: lowest IoU for a first-stage match (second stage uses 0.5 × 1.0 cost, i.e. IoU ≥ 0.5).
        max_age: frames a confirmed track may go unmatched before it ends as ``lost``.
        min_hits: consecutive matches a tentative track needs to be confirmed.
        min_similarity: appearance gate of every match (cosine; used when both sides have embeddings).
        reid_similarity: cosine a lost track needs to resume on a face anywhere in the frame.
        reid_window_s: how long (stream time) a lost track may resume; it also waits this long
            (and at least ``max_age`` frames) before it ends.
        momentum: weight of the old appearance in the moving average.
        appearance_weight: weight of ``1 − cosine`` added to the geometric cost.
        first_id: the first track id (a source resumed on another worker continues above the ids it had).
        max_speed: a track that missed frames continues only on a face whose centre is within ``(1 + max_speed ·
            dt)`` face sizes of its last face (``dt``: stream seconds since it; :meth:`plausible`). Real faces of the
            development clips moved at most 2.2 sizes a second.
        strong_similarity: re-identification beyond that reach needs this cosine (different people of the
            development clips reached 0.63 at most with the embedded student's embedding).

    Continuations are where tracks swap people, so a track that missed frames resumes only on a face that looks like
    it (``reid_similarity``) and could have moved there; a track never confirmed survives frames on which the
    detector was not looking at the whole frame (``update(full=False)``), and two full-frame detections in a row
    confirm it.
    """

    def __init__(self, high_thresh: float = 0.8, low_thresh: float = 0.5, new_track_thresh: float = 0.85,
                 match_iou: float = 0.2, max_age: int = 30, min_hits: int = 3, min_similarity: float = 0.25,
                 reid_similarity: float = 0.5, reid_window_s: float = 2.0, momentum: float = 0.8,
                 appearance_weight: float = 0.5, first_id: int = 1, max_speed: float = 4.0,
                 strong_similarity: float = 0.65) -> None:
        if not 0 <= low_thresh <= high_thresh <= 1:
            raise ValueError(f"tracker: expected 0 <= low_thresh <= high_thresh <= 1, "
                             f"found {low_thresh}, {high_thresh}")
        self.min_similarity, self.reid_similarity = float(min_similarity), float(reid_similarity)
        self.reid_window_s, self.momentum = float(reid_window_s), float(momentum)
        self.appearance_weight = float(appearance_weight)
        self.high_thresh, self.low_thresh = high_thresh, low_thresh
        self.new_track_thresh, self.match_iou = new_track_thresh, match_iou
        self.max_age, self.min_hits = int(max_age), int(min_hits)
        self.max_speed, self.strong_similarity = float(max_speed), float(strong_similarity)
        self.tracks: list[Track] = []
        self._next_id = int(first_id)
        self.started = 0  # tracks started (tentative ones included)
        self.unconfirmed = 0  # tentative tracks that ended unconfirmed
        self._now: float | None = None

    def _cost(self, tracks: list[Track], det: np.ndarray, faces: Faces, emb: np.ndarray | None) -> np.ndarray:
        """``1 − IoU`` (+ appearance), with appearance-gated pairs set out of reach."""
        boxes = np.array([t.box for t in tracks], np.float32).reshape(-1, 4)
        cost = 1 - iou_matrix(boxes, faces.boxes[det])
        if emb is None or not len(tracks) or not len(det):
            return cost
        sim = self._similarity(tracks, emb[det])
        known = np.isfinite(sim)
        cost = cost + np.where(known, self.appearance_weight * (1 - np.nan_to_num(sim)), 0.0)
        # a track that missed frames continues only on a face that looks like it, or that it could have reached
        resumed = np.array([t._misses > 0 for t in tracks])[:, None]
        floor = np.where(resumed, self.reid_similarity, self.min_similarity)
        reach = self.plausible(tracks, faces.boxes[det])
        refused = (known & (sim < floor)) | (resumed & ~reach & ~(known & (sim >= self.strong_similarity)))
        return np.where(refused, 1e6, cost)

    def plausible(self, tracks: list[Track], boxes: np.ndarray) -> np.ndarray:
        """``(tracks, boxes)``: whether each box's centre is within reach of each track's last face (:attr:`max_speed`
        face sizes a second, plus one size)."""
        out = np.ones((len(tracks), len(boxes)), bool)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        sizes = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0])
        for r, t in enumerate(tracks):
            if t.last_box is None:
                continue
            dt = max(self._now - t.last_seen, 0.0) if self._now is not None else t._misses / 25.0
            last = t.last_box
            size = np.maximum(sizes, max(last[3] - last[1], last[2] - last[0]))
            dist = np.linalg.norm(centres - (last[:2] + last[2:]) / 2, axis=1)
            out[r] = dist <= (1.0 + self.max_speed * dt) * size
        return out

    @staticmethod
    def _similarity(tracks: list[Track], emb: np.ndarray) -> np.ndarray:
        """Cosine of each track's appearance to each embedding (NaN where either is unknown)."""
        out = np.full((len(tracks), len(emb)), np.nan, np.float32)
        for r, t in enumerate(tracks):
            if t.feature is not None:
                out[r] = emb @ t.feature
        return out

    def update(self, faces: Faces, embeddings: np.ndarray | None = None, now: float | None = None,
               full: bool | None = None, changes: np.ndarray | None = None) -> TrackUpdate:
        """Advance one frame with its detections.

        Args:
            faces: this frame's detections.
            embeddings: ``(N, D)`` unit-norm FR embeddings of the faces (rows of NaN where unknown), or
                None for geometry alone.
            now: the frame's stream time in seconds (re-identification window); None counts frames only.
            full: with region detection, whether the detector looked at the whole frame (it looks only around known
                faces on the frames between full ones: a tentative track it did not find there is not taken for gone,
                and one found on two full frames in a row is confirmed); None: every frame is detected in full.
            changes: ``(N,)`` how much each face's own pixels changed from the previous frame (NaN where unknown),
                kept per track as its usual change (:meth:`continues`); None when cuts are not detected.
        """
        emb = None
        if embeddings is not None and len(faces):
            emb = np.asarray(embeddings, np.float32).reshape(len(faces), -1)
        self._now = now
        for t in self.tracks:
            t.kalman.predict()
        high = np.nonzero(faces.scores >= self.high_thresh)[0]
        low = np.nonzero((faces.scores >= self.low_thresh) & (faces.scores < self.high_thresh))[0]
        active = [t for t in self.tracks if t.state in (TrackState.CONFIRMED, TrackState.LOST)]
        tentative = [t for t in self.tracks if t.state is TrackState.TENTATIVE]
        matched: list[tuple[Track, int]] = []

        def boxes(ts):
            return np.array([t.box for t in ts], np.float32).reshape(-1, 4)

        w = self.appearance_weight if emb is not None else 0.0
        # Stage 1: confident detections against confirmed and lost tracks (geometry, appearance-gated).
        pairs, left_t, left_d = match(self._cost(active, high, faces, emb), 1 - self.match_iou + w)
        matched += [(active[r], high[c]) for r, c in pairs if iou_matrix(boxes([active[r]]), faces.boxes[[high[c]]])[0, 0]
                    >= self.match_iou]
        done_t = {id(t) for t, _ in matched}
        rest_high = np.array([d for d in high if d not in {int(x) for _, x in matched}], np.int64)
        # Stage 1b: re-identification: unmatched tracks (lost, or visible until this frame: at a low processed rate a
        # face can move past the IoU gate between two frames) against the leftover confident faces, by appearance.
        if emb is not None:
            unmatched = [t for t in active if id(t) not in done_t and t.feature is not None]
            if unmatched and len(rest_high):
                sim = np.nan_to_num(self._similarity(unmatched, emb[rest_high]), nan=-1.0)
                far = ~self.plausible(unmatched, faces.boxes[rest_high]) & (sim < self.strong_similarity)
                pairs, _, _ = match(np.where(far, 1e6, 1 - sim), 1 - self.reid_similarity)
                matched += [(unmatched[r], rest_high[c]) for r, c in pairs]
                taken = {int(rest_high[c]) for _, c in pairs}
                rest_high = np.array([d for d in rest_high if d not in taken], np.int64)
                done_t |= {id(unmatched[r]) for r, _ in pairs}
        # Stage 2: low-score detections only extend tracks that are still visible.
        remaining = [t for t in active if id(t) not in done_t and t.state is TrackState.CONFIRMED]
        pairs, _, _ = match(self._cost(remaining, low, faces, emb), 0.5 + w)
        matched += [(remaining[r], low[c]) for r, c in pairs
                    if iou_matrix(boxes([remaining[r]]), faces.boxes[[low[c]]])[0, 0] >= 0.5]
        # Stage 3: tentative tracks against leftover confident detections.
        pairs, _, left_d = match(self._cost(tentative, rest_high, faces, emb), 1 - self.match_iou + w)
        matched += [(tentative[r], rest_high[c]) for r, c in pairs
                    if iou_matrix(boxes([tentative[r]]), faces.boxes[[rest_high[c]]])[0, 0] >= self.match_iou]
        used = {int(d) for _, d in matched}
        unmatched_high = np.array([d for d in rest_high if d not in used], np.int64)

        hit_ids = set()
        for t, d in matched:
            if t.state is TrackState.LOST and t._misses > 1:  # resumed after a gap: restart the motion model
                t.kalman = KalmanBox(faces.boxes[d])
            t.kalman.update(faces.boxes[d])
            t.last_box = faces.boxes[d].copy()
            t.last_embedding = None if emb is None else emb[d]
            if changes is not None and np.isfinite(changes[d]):
                t.changes.append(float(changes[d]))
            if now is not None:
                t.last_seen = now
            if faces.scores[d] >= self.high_thresh:
                t.observe(None if emb is None else emb[d], self.momentum)
            t.streak += 1
            t.full_hits += int(full is True)
            t._misses = 0
            if t.state is TrackState.LOST or (t.state is TrackState.TENTATIVE
                                              and (t.streak >= self.min_hits or t.full_hits >= 2)):
                t.state = TrackState.CONFIRMED
            hit_ids.add(t.track_id)
        ended, dropped = [], []
        for t in self.tracks:
            if t.track_id in hit_ids:
                continue
            t._misses += 1
            if t.state is TrackState.TENTATIVE and full is False:
                continue  # the detector did not look at the whole frame: not seen is not gone
            t.streak = t.full_hits = 0
            if t.state is TrackState.TENTATIVE:
                t.state = TrackState.ENDED
                dropped.append(t.track_id)
                self.unconfirmed += 1
            elif t._misses > self.max_age and not self._may_resume(t):
                t.state, t.end_reason = TrackState.ENDED, "lost"
                ended.append(t)
            else:
                t.state = TrackState.LOST
        for d in unmatched_high:
            if faces.scores[d] >= self.new_track_thresh:
                self._start(faces.boxes[d])
                self.tracks[-1].last_seen = now or 0.0
                self.tracks[-1].last_box = faces.boxes[d].copy()
                self.tracks[-1].full_hits = int(full is True)
                self.tracks[-1].observe(None if emb is None else emb[d], self.momentum)
                if self.min_hits <= 1:
                    self.tracks[-1].state = TrackState.CONFIRMED
                matched.append((self.tracks[-1], d))
        self.tracks = [t for t in self.tracks if t.state is not TrackState.ENDED]
        assignments = sorted((t.track_id, int(d)) for t, d in matched)
        return TrackUpdate(assignments, ended, dropped)

    def continues(self, faces: Faces, embeddings: np.ndarray | None = None, iou: float = 0.5,
                  similarity: float = 0.9, changes: np.ndarray | None = None, still: float = 0.0) -> bool:
        """Whether a face of ``faces`` continues a track seen on the previous frame unchanged: its box overlaps the
        track's last one by ``iou`` and either (when both have embeddings) its embedding agrees with the last face's by
        ``similarity`` or (``changes``, ``still`` > 0) its own pixels changed at most ``still`` times the track's
        usual change (:meth:`Track.usual_change`). Faces of consecutive frames of the development clips agreed at a
        median of 0.94; across the jump cuts there, at 0.71–0.88 — and a face whose picture did not move can read
        lower (an embedding of a small, compressed face, or landmarks from another detection pass); its pixels then
        say it is the same face, where at a jump cut they changed 3.5 times its usual or more."""
        recent = [t for t in self.tracks if t._misses == 0 and t.last_box is not None]
        if not recent or not len(faces):
            return False
        ov = iou_matrix(np.stack([t.last_box for t in recent]), faces.boxes)
        for r, t in enumerate(recent):
            for d in np.flatnonzero(ov[r] >= iou):
                if embeddings is None or t.last_embedding is None or float(embeddings[d] @ t.last_embedding) >= similarity:
                    return True
                usual = t.usual_change()
                if still > 0 and changes is not None and usual is not None and changes[d] <= still * usual:
                    return True  # NaN (a face too small to say) compares False
        return False

    def _may_resume(self, t: Track) -> bool:
        """A lost track with an appearance waits for re-identification until ``reid_window_s`` has passed."""
        return (t.feature is not None and self._now is not None and self.reid_window_s > 0
                and self._now - t.last_seen <= self.reid_window_s)

    def get(self, track_id: int) -> Track | None:
        """The live track with ``track_id``, if any."""
        return next((t for t in self.tracks if t.track_id == track_id), None)

    def flush(self, reason: str) -> list[Track]:
        """End every confirmed or lost track now (EOF, shutdown), returning them; a tentative one ends unconfirmed
        (counted in :attr:`unconfirmed`, as one that ends before it is confirmed mid-stream)."""
        ended = []
        for t in self.tracks:
            if t.state in (TrackState.CONFIRMED, TrackState.LOST):
                t.state, t.end_reason = TrackState.ENDED, reason
                ended.append(t)
            elif t.state is TrackState.TENTATIVE:
                self.unconfirmed += 1
        self.tracks = []
        return ended

    def new_id(self) -> int:
        """A fresh track id (for a track split in two after the fact)."""
        self._next_id += 1
        return self._next_id - 1

    def _start(self, box: np.ndarray) -> None:
        self.started += 1
        self.tracks.append(Track(self._next_id, KalmanBox(box)))
        self._next_id += 1
