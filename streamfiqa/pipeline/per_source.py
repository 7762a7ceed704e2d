"""One source's run: its decoder, tracker, best-crop selector and enrolment, and its counters."""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

from streamfiqa.config import Config
from streamfiqa.detect.base import ScoreScale
from streamfiqa.io.media import is_image
from streamfiqa.io.sources import Source
from streamfiqa.io.specs import SourceSpec
from streamfiqa.pipeline.best_crop import BestSelector, ScoredFrame, Typicality
from streamfiqa.pipeline.enroll import Enrolment
from streamfiqa.pipeline.stats import RateWindow, SourceStatus
from streamfiqa.quality.expression import FaceMeasures
from streamfiqa.quality.faceness import FaceCheck
from streamfiqa.quality.second_look import SecondLook
from streamfiqa.track.tracker import Tracker


def selection_plugins(cfg: Config) -> tuple[FaceCheck | None, SecondLook | None]:
    """The face check and the second look ``cfg`` asks of each source's selector (no model loads before a track's
    end). The pipeline's builder calls it once before any source opens: an unknown name fails there, as a user's
    mistake, not in the runner's loop."""
    s, q = cfg.selection, cfg.quality
    check = FaceCheck(q.face_check) if q.face_check else None
    look = SecondLook(s.second_look, s.second_look_args) if s.second_look and s.rank == "typical" else None
    return check, look


@dataclass
class SourceRun:
    """A source as the runner holds it (built by :meth:`open`).

    Attributes:
        index: position in the runner's sources (heavy-tier jobs refer to their source by it).
        source: the decoder.
        tracker: its tracker.
        selector: its best-crop selector.
        enroll: its enrolment (``--pipeline enroll``), else None.
        lag / max_lag: live: now − estimated capture time of the newest processed frame (s), and its maximum.
        last_pts: stream time of the newest processed frame.
        detected_pts: stream time of the newest detected frame (the detection stage's own).
        cuts: shot cuts found; cuts_held: candidate cuts a face went on unchanged across (no cut).
        recent_pts: stream times of the newest (up to 50) processed frames: the source's processed rate in its own
            clock (a catch-up burst does not quicken it), and so how long a live source's silence is a stall
            (:meth:`stalled`).
        last_frame_at: monotonic time the newest frame was processed (None before the first).
    """

    index: int
    source: Source
    tracker: Tracker
    selector: BestSelector
    enroll: Enrolment | None = None
    processed: int = 0
    faces: int = 0
    events: int = 0
    done: bool = False
    by_kind: dict = field(default_factory=dict)
    lag: float = 0.0
    max_lag: float = 0.0
    last_pts: float = 0.0
    first_pts: float | None = None
    detected_pts: float | None = None
    cuts: int = 0
    cuts_held: int = 0
    progress: object = None
    show_progress: bool = False
    rate: RateWindow = field(default_factory=RateWindow)
    recent_pts: collections.deque = field(default_factory=lambda: collections.deque(maxlen=50))
    last_frame_at: float | None = None

    @classmethod
    def open(cls, spec: SourceSpec, index: int, cfg: Config, wake, first_track_id: int = 1,
             progress: bool = False, scale: ScoreScale | None = None, finisher=None,
             start: bool = True) -> "SourceRun":
        """Start decoding ``spec`` (``start``; else it waits for :meth:`Source.start`) and give it a tracker and a
        selector configured by ``cfg`` (tracker thresholds left null take the detector's ``scale``; ``finisher``: the
        executor ending its tracks, see :class:`~streamfiqa.pipeline.best_crop.BestSelector`)."""
        t, s, scale = cfg.tracker, cfg.selection, scale or ScoreScale()
        # each photo its own shot: one hit suffices (a folder's photos, and an image given as a file of its own)
        photos = (spec.kind == "folder" and not cfg.sources.folder_tracking) or (spec.kind == "file"
                                                                                 and is_image(spec.uri))
        pick = lambda value, own: own if value is None else value  # noqa: E731
        tracker = Tracker(pick(t.high_thresh, scale.high), pick(t.low_thresh, scale.low),
                          pick(t.new_track_thresh, scale.new), t.match_iou, t.max_age,
                          1 if photos else t.min_hits, t.min_similarity, t.reid_similarity, t.reid_window_s,
                          first_id=first_track_id)
        measures = FaceMeasures(cfg.align.display_margin) if cfg.quality.face_measures else None  # selector, enrolment
        check, look = selection_plugins(cfg)
        run = cls(index, Source(spec, cfg.sources, wake), tracker,
                  BestSelector(s.top_k, s.emit_updates, s.min_dwell_s, s.update_margin, s.rank, s.pool,
                               Typicality(s.quality_band, s.sharpness, s.min_faces), tracker.new_id,
                               s.split_below if s.split_below > 0 else None, cfg.quality.min_face_score,
                               check,
                               s.same_person if s.same_person > 0 else None,
                               measures, s.eyes_weight, s.eyes_closed if s.eyes_closed > 0 else None,
                               second_look=look, nested_share=s.nested_share if s.nested_share > 0 else None,
                               finisher=finisher))
        if cfg.pipeline == "enroll":
            run.enroll = Enrolment(cfg.enroll, spec.id, measures, s.eyes_closed if s.eyes_closed > 0 else None,
                                   Typicality(s.quality_band, s.sharpness, s.min_faces), s.rank)
        run.show_progress = progress and not spec.live
        if start:
            run.start()
        return run

    def start(self) -> None:
        """Start decoding, with its progress bar when bars are shown (a file waiting its turn has none yet)."""
        if self.show_progress:
            from tqdm import tqdm

            self.progress = tqdm(desc=self.id, unit="frame", leave=True)
        self.source.start()

    @property
    def id(self) -> str:
        return self.source.spec.id

    @property
    def live(self) -> bool:
        return self.source.spec.live

    def observe_lag(self, capture: float) -> None:
        """A live frame captured at wall time ``capture`` is being processed now."""
        if self.source.spec.live and capture:
            self.lag = time.time() - capture
            self.max_lag = max(self.max_lag, self.lag)

    def count(self, sf: ScoredFrame) -> None:
        """A frame went through the pipeline."""
        if self.first_pts is None:
            self.first_pts = sf.frame.pts
        self.processed += 1
        self.last_pts = sf.frame.pts
        self.recent_pts.append(sf.frame.pts)
        self.last_frame_at = time.monotonic()
        self.faces += len(sf.faces)
        self.rate.add(len(sf.faces))
        if self.progress is not None:
            self.progress.total = self.source.total_frames or None
            self.progress.update(1)

    def stalled(self, max_age: int, floor_s: float = 1.0) -> bool:
        """A live source with open tracks from which no frame has come, none waiting in its queue, for as long as
        ``max_age`` frames take at its processed rate (at least ``floor_s``): its camera dropped or froze."""
        pts = self.recent_pts
        if not self.live or self.done or len(pts) < 2 or not self.tracker.tracks:
            return False
        if self.source.depth:  # frames are waiting: the runner is behind, the camera is not silent
            return False
        interval = max(pts[-1] - pts[0], 0.0) / (len(pts) - 1)
        return self.silent_s > max(floor_s, max_age * interval)

    @property
    def silent_s(self) -> float:
        """Seconds since the newest frame was processed (0 before the first)."""
        return time.monotonic() - self.last_frame_at if self.last_frame_at is not None else 0.0

    def counted(self, kind: str) -> None:
        """An event of ``kind`` was emitted."""
        self.events += 1
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    def status(self) -> SourceStatus:
        """The counters so far."""
        src = self.source
        return SourceStatus(self.id, self.processed, self.faces, self.events, dict(self.by_kind), src.decoded,
                            src.dropped, src.skipped, src.reconnects, round(self.lag, 3), round(self.max_lag, 3),
                            src.lag_skipped, src.decode_errors, src.depth,
                            round(1000 * src.decode_s / max(src.decoded, 1), 2), self.cuts, self.done, src.error,
                            dict(self.selector.rejected), self.tracker.unconfirmed, src.frames_lost,
                            src.turned or 0, round(src.sample_aspect, 4),
                            src.interlaced, self.unprocessed, src.timestamps_repaired, src.unread, self.cuts_held,
                            src.timestamps_reordered, src.frames_damaged)

    @property
    def unprocessed(self) -> int:
        """Frames decoded and kept (not skipped by the rate, not dropped) that were never processed."""
        src = self.source
        return max(0, src.decoded - src.skipped - src.dropped - self.processed) if self.done else 0

    def summary(self, reason: str) -> str:
        """The line logged when the source finishes."""
        src = self.source
        if not src.started:
            return f"{self.id}: not started ({reason} before its turn): its {src.unread} frames unread"
        live = f", max lag {self.max_lag:.2f} s, {src.lag_skipped} packets skipped to catch up" if src.spec.live else ""
        error = f", error: {src.error}" if src.error else ""
        return (f"{self.id}: finished ({reason}): {self.processed} frames, {self.faces} faces, {self.events} events, "
                f"{src.dropped} dropped{live}{error}")
