"""What a run counts: each source's typed status, the time each stage takes, and the stats line."""
from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)
#: The per-frame stages whose time is measured (``stages_ms`` in the stats, ``streamfiqa_stage_seconds``).
STAGES = ("detect", "align", "quality", "score", "track", "select")


@dataclass(frozen=True)
class SourceStatus:
    """One source's counters (what the stats, the metrics and the fleet's fan-in read).

    Attributes:
        id: the source id.
        processed: frames that went through the pipeline.
        faces: faces detected in them.
        events: events emitted; ``events_by_kind`` splits them by kind.
        decoded: frames decoded (processed, skipped and dropped ones).
        dropped: live frames dropped because processing fell behind.
        skipped: frames skipped by ``sources.stride`` / ``max_fps``.
        reconnects: reconnections of a live source.
        lag_s / max_lag_s: live: now − capture time of the newest processed frame, and its maximum.
        lag_skipped: live packets dropped unseen to catch up with real time.
        decode_errors: undecodable packets skipped.
        queue: decoded frames waiting.
        decode_ms: decoding time per decoded frame.
        cuts: shot cuts detected.
        cuts_held: frames whose picture changed like a cut's where a face went on unchanged (an inset, a graphic, a
            flash over the same person): no cut, no track ended.
        done: the source has ended.
        error: why it failed, if it did.
        rejected: tracks not published, by reason (``unrecognisable``, ``duplicate``, ``face_part``).
        unconfirmed: tracks that ended before they were confirmed (too few detections; not published).
        frames_lost: files: frames that could not be decoded (short of the container's frame count).
        rotation: the display rotation its frames were turned by to upright (degrees counter-clockwise; 0: none or
            ``sources.autorotate`` off).
        sample_aspect: the width / height of its pixels, to which frames were stretched to square ones (1.0: square,
            or ``sources.square_pixels`` off).
        interlaced: its frames are interlaced (passed on as decoded, combing and all; a warning says so).
        unprocessed: frames decoded and kept that were never processed: they waited in a queue when the run was
            stopped (0 for a source read to its end).
        unread: files and folders: frames never decoded because the run was stopped before their end.
        timestamps_repaired: frames whose own timestamp went back or repeated (a damaged or concatenated file),
            timed one frame period after the frame before instead.
        timestamps_reordered: recordings: frames whose own time came out of order (a damaged file's decoder pairs
            frames with the wrong times), given the time their place in the order takes (a few frames held back;
            what is still out of order after that is in ``timestamps_repaired``).
        frames_damaged: frames decoded from a damaged stretch of the stream (bytes lost or broken since the last
            whole keyframe; :attr:`streamfiqa.types.Frame.damaged`): their faces are tracked, never published while
            a face of the track from a whole frame passes.
    """

    id: str
    processed: int
    faces: int
    events: int
    events_by_kind: dict
    decoded: int
    dropped: int
    skipped: int
    reconnects: int
    lag_s: float
    max_lag_s: float
    lag_skipped: int
    decode_errors: int
    queue: int
    decode_ms: float
    cuts: int
    done: bool
    error: str | None = None
    rejected: dict = dataclasses.field(default_factory=dict)
    unconfirmed: int = 0
    frames_lost: int = 0
    rotation: int = 0
    sample_aspect: float = 1.0
    interlaced: bool = False
    unprocessed: int = 0
    timestamps_repaired: int = 0
    unread: int = 0
    cuts_held: int = 0
    timestamps_reordered: int = 0
    frames_damaged: int = 0

    def as_dict(self) -> dict:
        """The counters as a plain dict (without the id: stats are keyed by it)."""
        out = dataclasses.asdict(self)
        del out["id"]
        return out


class StageClock:
    """Adds up the time of each stage (and observes it into the metrics' histogram when there are metrics).

    Use: ``with clock("detect"): ...``.
    """

    def __init__(self, metrics=None) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.metrics = metrics

    @contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.seconds[stage] += dt
            if self.metrics is not None:
                self.metrics.observe(stage, dt)

    def ms_per_frame(self, frames: int) -> dict[str, float]:
        """Milliseconds each stage took per processed frame."""
        return {k: round(1000 * v / max(frames, 1), 2) for k, v in self.seconds.items()}


class RateWindow:
    """Frames and faces per second of one source since the last stats line."""

    def __init__(self) -> None:
        self.frames = self.faces = 0
        self.t0 = time.perf_counter()

    def add(self, faces: int) -> None:
        self.frames += 1
        self.faces += faces

    def take(self) -> tuple[float, float]:
        """``(fps, faces/s)`` since the last call; starts a new window."""
        dt = max(time.perf_counter() - self.t0, 1e-6)
        out = (self.frames / dt, self.faces / dt)
        self.__init__()
        return out


def stats_line(stats: dict, rates: dict[str, tuple[float, float]], live: dict[str, bool], queue_size: int,
               shown: set[str] | None = None) -> str:
    """The one-line summary logged every ``stats_interval_s`` (``Runner.stats()`` plus each source's rates); with
    ``shown``, only those sources, and a count of the others."""
    parts = []
    for sid, s in stats["sources"].items():
        if shown is not None and sid not in shown:
            continue
        fps, faces = rates.get(sid, (0.0, 0.0))
        lag = f", lag {s['lag_s']:.2f} s, lag-skipped {s['lag_skipped']}" if live.get(sid) else ""
        parts.append(f"{sid}: {fps:.1f} fps, {faces:.1f} faces/s, queue {s['queue']}/{queue_size}, dropped "
                     f"{s['dropped']}, reconnects {s['reconnects']}, decode errors {s['decode_errors']}{lag}")
    if shown is not None:
        done = sum(1 for sid, s in stats["sources"].items() if s["done"])
        parts.append(f"{done} sources finished, {len(stats['sources']) - done - len(shown)} waiting")
    extra = ""
    h = stats.get("heavy")
    if h:
        extra = f" | heavy {h['scorer']}: done {h['done']}, skipped {h['skipped']}, queue {h['queue']}"
    c = stats.get("detector")
    if c:
        extra += f" | detector: full {c['full']}, windowed {c['windowed']} ({c['windows']} windows)"
    stages = " ".join(f"{k} {v:.1f}" for k, v in stats["stages_ms"].items())
    return f"stats | {' | '.join(parts)} | publish dropped {stats['publish_dropped']}{extra} | ms/frame: {stages}"


def versions() -> dict[str, str]:
    """The program's and its main libraries' versions (for the run's manifest)."""
    from importlib import metadata

    out = {}
    for name in ("streamfiqa", "numpy", "opencv-python", "av", "onnxruntime", "torch", "pyzmq"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


#: A source's frames and packets not processed, by reason: the summary's name → its :class:`SourceStatus` field.
_SOURCE_DROPS = {"frames_queue_full": "dropped", "packets_lag": "lag_skipped", "packets_undecodable": "decode_errors",
                 "frames_undecodable": "frames_lost", "frames_skipped_by_rate": "skipped",
                 "frames_unprocessed_at_stop": "unprocessed", "frames_unread_at_stop": "unread"}


def _source_drops(s: dict) -> dict:
    return {name: s.get(field, 0) for name, field in _SOURCE_DROPS.items()}


def run_summary(stats: dict, elapsed_s: float, stream_s: float, tracks_started: int,
                new_track_thresh: float | None = None) -> dict:
    """What a run did, for its last log line (logged here) and ``OUT/manifest.json``: time, real-time factor, frames,
    faces, tracks, events by kind, what was dropped and what was rejected, by reason, and the versions. Faces found
    but no track started (their detector scores all below ``new_track_thresh``) are warned about."""
    src = stats["sources"].values()
    kinds: dict = {}
    rejected: dict = {}
    for s in src:
        for k, n in s["events_by_kind"].items():
            kinds[k] = kinds.get(k, 0) + n
        for k, n in s.get("rejected", {}).items():
            rejected[k] = rejected.get(k, 0) + n
    heavy = stats.get("heavy") or {}
    drops = {sid: _source_drops(s) for sid, s in stats["sources"].items()}
    summary = {
        "elapsed_s": round(elapsed_s, 2), "stream_s": round(stream_s, 2),
        "realtime_factor": round(stream_s / elapsed_s, 3) if elapsed_s > 0 else None,
        "frames_decoded": sum(s["decoded"] for s in src), "frames_processed": sum(s["processed"] for s in src),
        "faces": sum(s["faces"] for s in src), "tracks_started": tracks_started, "cuts": sum(s["cuts"] for s in src),
        "cuts_held": sum(s.get("cuts_held", 0) for s in src),
        "events_by_kind": kinds,
        "dropped": {**{k: sum(d[k] for d in drops.values()) for k in _SOURCE_DROPS},
                    "heavy_keyframes": heavy.get("skipped", 0), "events_unsent": stats["publish_dropped"],
                    "events_unwritten": stats.get("output_unwritten", 0),
                    **{f"faces_{k}": v for k, v in stats.get("faces_dropped", {}).items()},
                    "tracks_unconfirmed": sum(s.get("unconfirmed", 0) for s in src)},
        "rejected_tracks": rejected,
        "publish_close_complete": stats.get("publish_close_complete", True),
        # each source's own counts under the same names as the totals: which camera dropped what
        "sources": {sid: {"decoded": s["decoded"], "processed": s["processed"], "faces": s["faces"],
                          "events": s["events"], "cuts": s["cuts"], "cuts_held": s.get("cuts_held", 0),
                          "reconnects": s["reconnects"],
                          "max_lag_s": s["max_lag_s"], "dropped": drops[sid], "error": s.get("error"),
                          "rotation": s.get("rotation", 0), "sample_aspect": s.get("sample_aspect", 1.0),
                          "interlaced": s.get("interlaced", False),
                          "timestamps_repaired": s.get("timestamps_repaired", 0),
                          "timestamps_reordered": s.get("timestamps_reordered", 0),
                          "frames_damaged": s.get("frames_damaged", 0)}
                    for sid, s in stats["sources"].items()},
        "versions": versions()}
    if summary["faces"] and not tracks_started:
        log.warning("%d faces were found but no track started: their detector scores stayed below "
                    "tracker.new_track_thresh %s", summary["faces"], new_track_thresh)
        summary["warning"] = "faces found, no track started (tracker.new_track_thresh)"
    elif (tracks_started and not summary["events_by_kind"]
          and summary["dropped"]["tracks_unconfirmed"] == tracks_started):
        # every track ended before tracker.min_hits frames found its face: nothing was published, and why is said
        log.warning("%d faces were found but every one of the %d tracks ended unconfirmed: a face must be found in "
                    "tracker.min_hits frames before its track counts (a clip of a few frames, faces flickering in "
                    "and out)", summary["faces"], tracks_started)
        summary["warning"] = "faces found, every track unconfirmed (tracker.min_hits)"
    log.info("summary | %.1f s for %.1f s of video (%.2fx real time), %d frames, %d faces, %d tracks, events %s, "
             "rejected %s, dropped %s", summary["elapsed_s"], summary["stream_s"], summary["realtime_factor"] or 0,
             summary["frames_processed"], summary["faces"], tracks_started, summary["events_by_kind"],
             summary["rejected_tracks"], {k: v for k, v in summary["dropped"].items() if v})
    return summary


#: Summary fields that are no counts: merged by taking the largest (a lag) or one part's value.
_LARGEST, _KEPT = {"max_lag_s"}, {"rotation", "sample_aspect", "interlaced", "versions", "warning", "error"}


def merged_summary(parts: list[dict], elapsed_s: float, fleet: dict | None = None) -> dict:
    """One run summary from the summaries of several runners over the same run (a fleet's workers, a source's
    earlier worker and its replacement): counts added, a lag's largest kept, the time and the real-time factor the
    whole run's (``elapsed_s``), ``fleet``'s own counts beside them."""

    def add(a, b, key: str = ""):
        if isinstance(a, dict) and isinstance(b, dict):
            return {k: add(a[k], b[k], k) if k in a and k in b else a.get(k, b.get(k)) for k in {**a, **b}}
        if key in _KEPT:
            return a if a not in (None, "", 0) else b
        if isinstance(a, bool) or isinstance(b, bool):
            return bool(a) and bool(b)  # publish_close_complete: complete only if every part's was
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return max(a, b) if key in _LARGEST else a + b
        return a if a is not None else b

    out: dict = {}
    for part in parts:
        out = add(out, part) if out else dict(part)
    out["elapsed_s"] = round(elapsed_s, 2)
    out["realtime_factor"] = round(out.get("stream_s", 0.0) / elapsed_s, 3) if elapsed_s > 0 else None
    if fleet is not None:
        out["fleet"] = fleet
    return out
