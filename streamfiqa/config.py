"""Configuration: YAML files and ``--set key=value`` overrides → validated dataclasses."""
from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


#: The user journeys, one module each in the top-level ``pipelines/`` package (its ``PIPELINES`` maps these names).
PIPELINES = ("cctv", "enroll", "offline")


class ConfigError(ValueError):
    """A configuration key or value is not what was expected."""


def choice(default: Any, *allowed: Any) -> Any:
    """A dataclass field whose value must be one of ``allowed``."""
    return field(default=default, metadata={"choices": allowed})


def bounded(default: Any, lo: float | None = None, hi: float | None = None, above: bool = False) -> Any:
    """A numeric field that must lie in ``[lo, hi]`` (``(lo, hi]`` when ``above``)."""
    return field(default=default, metadata={"range": (lo, hi, above)})


@dataclass
class SourcesConfig:
    """How sources are opened and read."""

    live: str = choice("auto", "auto", "true", "false")
    rtsp_transport: str = choice("tcp", "tcp", "udp")
    rtsp_listen: bool = False
    stride: int = bounded(1, 1)
    max_fps: float = bounded(0.0, 0)
    queue_size: int = bounded(4, 1)
    max_open_files: int = bounded(2, 0)  # files and image folders decoded at once; the rest wait their turn (0: all)
    open_timeout_s: float = bounded(10.0, 0, above=True)
    read_timeout_s: float = bounded(5.0, 0, above=True)
    reconnect_initial_s: float = bounded(0.5, 0, above=True)
    reconnect_max_s: float = bounded(10.0, 0, above=True)
    max_reconnects: int = bounded(0, 0)
    folder_fps: float = bounded(1.0, 0, above=True)
    folder_tracking: bool = False  # image folders: track faces across photos (else each photo is its own shot)
    max_lag_s: float = bounded(1.0, 0, above=True)  # live: past this lag the decoder drops packets up to the next keyframe
    shot_cuts: str = choice("auto", "auto", "true", "false")  # detect hard cuts (auto: files, not live)
    cut_threshold: float = bounded(0.45, 0, 1, above=True)  # colour-histogram distance of a certain cut
    cut_change: float = bounded(5.0, 0, above=True)  # structural change (× the clip's own) of a candidate cut
    cut_step: float = bounded(3.5, 0)  # ... or of a one-frame step, the frames around it changing ≤ cut_step_ratio of it (0: off)
    cut_step_ratio: float = bounded(0.35, 0, 1, above=True)
    cut_face_still: float = bounded(2.5, 0)  # a candidate is no cut for a face whose own pixels changed ≤ this × its usual (0: off)
    realtime: bool = False  # files: deliver frames at the clip's own rate, as a camera would (with live=true: a replay)
    decode_threads: int = bounded(0, 0)  # FFmpeg decoder threads (0 = FFmpeg's choice; 1 = in the decode thread)
    autorotate: bool = True  # turn frames upright as their display matrix says (phone video), as players do
    square_pixels: bool = True  # stretch frames of non-square pixels (D1, HDV) to square ones, as players do


@dataclass
class DetectorConfig:
    """Face detector; ``name`` is one of the registered detectors."""

    name: str = "retinaface"  # a registered detector (streamfiqa.detect.detector_names(); checked when built)
    model_path: str | None = None
    min_face: int = bounded(20, 1)
    score_threshold: float | None = bounded(None, 0, 1)  # null: the detector's own floor (its score scale)
    max_faces: int = bounded(0, 0)
    max_side: int = bounded(1280, 0)
    providers: list = field(default_factory=lambda: ["CPUExecutionProvider"])
    threads: int = bounded(0, 0)
    backend: str = choice("onnxruntime", "onnxruntime", "openvino", "tensorrt", "auto")
    precision: str | None = None  # the backend's default when unset; bf16 (openvino), fp16 (tensorrt)
    thread: bool = False  # detect/align in a thread of its own, pipelined with scoring and tracking
    full_every: int = bounded(1, 1)  # full-frame detection on 1 frame in N per source; windows around faces between
    window: int = bounded(128, 32)   # side (network pixels) of each window around a known face (full_every > 1)


@dataclass
class AlignConfig:
    """Display crop geometry (aligned crops are always 112×112 ArcFace)."""

    display_margin: float = bounded(0.4, 0)
    display_size: int = bounded(0, 0)


@dataclass
class TrackerConfig:
    """ByteTrack-style tracker thresholds (on the detector's score scale: null takes the detector's own)."""

    high_thresh: float | None = bounded(None, 0, 1)  # null: the detector's own (its score scale)
    low_thresh: float | None = bounded(None, 0, 1)
    new_track_thresh: float | None = bounded(None, 0, 1)
    match_iou: float = bounded(0.2, 0, 1)
    max_age: int = bounded(15, 0)
    min_hits: int = bounded(3, 1)
    appearance: str = "auto"  # faces' embeddings: auto (the scorer's, else fiqa_fast's), off, or an FR name
    appearance_args: dict = field(default_factory=dict)
    min_similarity: float = bounded(0.25, -1, 1)
    reid_similarity: float = bounded(0.5, -1, 1)
    reid_window_s: float = bounded(2.0, 0)
    end_at_cut: bool = True  # a shot cut ends every track (cuts are detected per sources.shot_cuts)


@dataclass
class KeyframeConfig:
    """Which candidates the heavy tier re-scores (see :mod:`streamfiqa.pipeline.rescore`)."""

    top_k: int = bounded(2, 0)
    period_s: float = bounded(2.0, 0)
    at_end: bool = True
    max_per_track: int = bounded(0, 0)
    queue_size: int = bounded(16, 1)
    end_wait_s: float = bounded(10.0, 0)
    threads: int = bounded(0, 0)


@dataclass
class QualityConfig:
    """Tier-0 gates, the fast scorer (every face) and the heavy scorer (keyframes)."""

    min_inter_eye: float = bounded(12.0, 0)
    max_yaw: float = bounded(60.0, 0, 180)
    max_pitch: float = bounded(50.0, 0, 180)
    max_roll: float = bounded(60.0, 0, 180)
    min_det_score: float = bounded(0.0, 0, 1)
    min_sharpness: float = bounded(0.0, 0)
    max_clipped: float = bounded(0.5, 0, 1)
    min_in_frame: float = bounded(1.0, 0, 1)  # share of the aligned face region inside the frame (dev half; README)
    scorer: str | None = "fiqa_fast"
    scorer_args: dict = field(default_factory=dict)
    min_score: str | None = None  # a number, or an ``eval`` calibration.json (its entry for ``scorer``)
    min_face_score: float | None = 0.2  # a track none of whose faces reaches this predicted utility (fiqa_fast's
                                        # scale, whatever the scorer) is not published ...
    face_check: str | None = "mtcnn"  # ... unless this second detector finds a face in its best crops (null: off)
    face_measures: bool = True  # eyes_open / mouth_open / face_presence of each track's leading faces (face mesh)
    min_score_fr: str | None = None  # which FR model's calibration (default: the file's first)
    fast_every: int = bounded(1, 1)
    heavy: str | None = None
    heavy_args: dict = field(default_factory=dict)
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)


#: How a track's finalists are ranked (``selection.rank``; see :class:`streamfiqa.pipeline.best_crop.BestSelector`).
RANKINGS = ("typical", "fast")


@dataclass
class SelectionConfig:
    """Best-crop selection per track."""

    top_k: int = bounded(3, 1)
    emit_updates: bool = False
    min_dwell_s: float = bounded(1.0, 0)
    update_margin: float = bounded(0.05, 0)
    rank: str = choice("typical", *RANKINGS)  # typical: closest to the track's mean appearance; fast: fast score
    pool: int = bounded(24, 1)       # passing candidates kept per track
    quality_band: float = bounded(0.2, 0)  # typical: eligible within this of the track's best predicted utility
    sharpness: float = bounded(0.5, 0, 1)  # typical: eligible at this fraction of the sharpest eligible face
    min_faces: int = bounded(5, 1)   # typical: embedded faces before typicality ranks a track
    split_below: float = bounded(0.5, 0, 1)  # a track whose faces' means before and after a change point agree less
                                             # than this cosine holds two people and is split (0 = never split)
    same_person: float = bounded(0.6, 0, 1)  # a track that lived beside an open one this alike merges into it (0: never)
    nested_share: float = bounded(0.8, 0, 1)  # a track inside a bigger face's box in this share of its frames is a
                                              # part of that face, not published (0: never)
    eyes_weight: float = bounded(0.1, 0)     # with face measures: a leading face whose eyes_open is short of the
                                             # leaders' median loses this × the shortfall (typicality ranking)
    eyes_closed: float = bounded(0.2, 0, 1)  # with face measures: a leading face whose eyes_open is below this goes
                                             # behind all others (0: no such rule)
    second_look: str | None = "facenet_onnx"  # typical: FR model re-ranking each track's 8 leading faces by its
                                              # own typicality at the track's end (null: the tracker's embedding
                                              # alone); FaceNet on ONNX Runtime (facenet_int8: 2.7x faster, README)
    second_look_args: dict = field(default_factory=dict)
    finish_thread: bool = True  # tracks end (second look, face measures) in two worker threads, not the frame loop


@dataclass
class EnrollConfig:
    """Enrolment: stop once ``count`` pose-diverse crops score at least ``threshold``."""

    count: int = bounded(3, 1)
    threshold: float = 0.45  # predicted utility (fiqa_fast's scale, any scorer): ~ lower quartile of clean photos
    min_pose_delta: float = bounded(8.0, 0)
    window_s: float = bounded(5.0, 0)  # collect this long after the first good crop, then enrol the most typical
    timeout_s: float = bounded(30.0, 0, above=True)


@dataclass
class PublishConfig:
    """ZeroMQ publishing (disabled while ``endpoint`` is null)."""

    endpoint: str | None = None
    socket: str = choice("pub", "pub", "push")
    bind: bool = True
    hwm: int = bounded(100, 0)
    queue_size: int = bounded(64, 1)
    send_timeout_ms: int = bounded(1000, 0)
    jpeg_quality: int = bounded(90, 0, 100)
    curve_secret_key: str | None = None  # this publisher's .key_secret (CURVE on); see 'run_stream.py keys'
    curve_clients: str | None = None     # folder of allowed clients' public .key files (None: any CURVE client)
    insecure: bool = False               # allow binding beyond 127.0.0.1 without CURVE
    embedding: bool = False              # put each crop's FR embedding in the metadata (ZeroMQ and files)
    embedding_fr: str = "facenet"        # FR model that embeds published crops; auto = the tracker's embedding
    embedding_fr_args: dict = field(default_factory=dict)


@dataclass
class PersonsConfig:
    """One person across cameras: merge ``best`` events of the same person (see streamfiqa/pipeline/persons.py)."""

    enabled: bool = False
    threshold: str | None = None  # cosine, or an eval calibration.json (its fr_threshold for ``fr``); None = built-in
    fr: str | None = None         # which FR model's entry a calibration file gives (default: publish.embedding_fr)
    window_s: float = bounded(60.0, 0, above=True)


@dataclass
class FleetConfig:
    """Scale-out on Ray (see streamfiqa/cluster/fleet.py); off while ``workers`` is 0."""

    workers: int = bounded(0, 0)
    address: str | None = None        # Ray cluster address (auto, ray://head:10001); None = a new local Ray of its own
    cpus_per_worker: float = bounded(1.0, 0)
    gpus_per_worker: float = bounded(0.0, 0)
    spread: bool = True               # place workers on different nodes where possible
    checkpoint_s: float = bounded(1.0, 0, above=True)  # how often a worker records its open tracks' bests
    poll_s: float = bounded(0.2, 0, above=True)
    poll_timeout_s: float = bounded(30.0, 0, above=True)  # a worker silent this long is replaced
    nominal_fps: float = bounded(25.0, 0, above=True)     # live sources: frames counted per second of a gap


@dataclass
class OutputConfig:
    """File sink (disabled while ``dir`` is null)."""

    dir: str | None = None
    contact_sheet: bool = False
    save_aligned: bool = True
    overwrite: bool = False  # replace an earlier run in the same directory (else the run is refused)


@dataclass
class MetricsConfig:
    """Prometheus endpoint (off while ``port`` is null; 0 picks a free port)."""

    port: int | None = bounded(None, 0, 65535)
    address: str = "127.0.0.1"


@dataclass
class Config:
    """The whole configuration of a run."""

    pipeline: str = choice("offline", *PIPELINES)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    enroll: EnrollConfig = field(default_factory=EnrollConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    persons: PersonsConfig = field(default_factory=PersonsConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)
    stats_interval_s: float = bounded(5.0, 0)
    progress: str = choice("auto", "auto", "true", "false")


def _home(value: Any) -> Any:
    """``~/…`` in a string (or in a dict of plug-in arguments) as the user's home, as a shell would: neither YAML nor
    a shell expands it after ``--set key=`` (a run with ``output.dir: ~/runs`` wrote into a folder named ``~``)."""
    if isinstance(value, str) and (value == "~" or value.startswith("~/")):
        return os.path.expanduser(value)
    if isinstance(value, dict):
        return {k: _home(v) for k, v in value.items()}
    return value


def _coerce(value: Any, tp: Any, key: str) -> Any:
    value = _home(value)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, str):  # YAML 1.1 reads an exponent without a dot (1e9) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                raise ConfigError(f"config key {key!r}: expected a finite number, found {value!r}")
            return float(value)
    elif tp is str:
        if isinstance(value, bool):  # YAML reads true/false as booleans: keys like progress take them as words
            return "true" if value else "false"
        if isinstance(value, (str, int, float)):
            return str(value)
    elif tp is list or typing.get_origin(tp) is list:
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return [v for v in value.split(",") if v]
    elif tp is dict:
        if isinstance(value, dict):
            return value
    name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"config key {key!r}: expected {name}, found {value!r}")


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config section {prefix.rstrip('.') or '<top>'!r}: expected a mapping, found {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        full = prefix + str(key)
        if key not in fields:
            raise ConfigError(f"unknown config key {full!r}; allowed keys here: {', '.join(fields)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value if value is not None else {}, full + ".")
            continue
        value = _coerce(value, tp, full)
        allowed = fields[key].metadata.get("choices")
        if allowed and value not in allowed:
            raise ConfigError(f"config key {full!r}: expected one of {', '.join(map(str, allowed))}, "
                              f"found {value!r}")
        bounds = fields[key].metadata.get("range")
        if bounds and value is not None:
            lo, hi, above = bounds
            if (lo is not None and (value <= lo if above else value < lo)) or (hi is not None and value > hi):
                lo_txt = "" if lo is None else (f"> {lo}" if above else f">= {lo}")
                hi_txt = "" if hi is None else f"<= {hi}"
                raise ConfigError(f"config key {full!r}: expected a value {' and '.join(filter(None, (lo_txt, hi_txt)))}"
                                  f", found {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


def _set(data: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {part!r} is not a section")
    node[parts[-1]] = value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict | None = None) -> Config:
    """Read a YAML config, apply ``key=value`` overrides (dotted keys, YAML values) and validate.

    Args:
        path: YAML file, or None for the defaults.
        overrides: strings like ``"tracker.max_age=30"``.
        base: a mapping applied before the file (a pipeline's own defaults).

    Raises:
        ConfigError: naming the bad key and the allowed keys or values.
    """
    data: dict = {}
    for k, v in (base or {}).items():
        _set(data, k, v)
    if path is not None:
        _merge(data, read_yaml(path))
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set: expected key=value, found {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {item}: the value is not valid YAML") from None
        _set(data, key.strip(), value)
    _expand_specs(data)
    return _build(Config, data, "")


def parse_spec(spec: str) -> tuple[str, str, dict]:
    """``NAME`` or ``NAME:key=value;key=value`` (YAML values) → ``(label, name, args)``; the label is the spec.

    Raises:
        ValueError: an item without ``=``.
    """
    name, _, rest = spec.partition(":")
    args = {}
    for item in filter(None, rest.split(";")):
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{spec!r}: expected NAME or NAME:key=value;key=value, found {item!r}")
        args[key.strip()] = yaml.safe_load(raw)
    return spec, name, args


def _expand_specs(data: dict) -> None:
    """``quality.scorer`` / ``quality.heavy`` may carry their arguments (``fiqa_fast:precision=int8``): split them
    into the name and ``scorer_args`` / ``heavy_args`` (explicit args win). A pipeline's default scorer keeps its
    arguments this way, and a user who names another scorer replaces both at once."""
    quality = data.get("quality")
    if not isinstance(quality, dict):
        return
    for key in ("scorer", "heavy"):
        spec = quality.get(key)
        if isinstance(spec, str) and ":" in spec:
            try:
                _, name, args = parse_spec(spec)
            except ValueError as exc:
                raise ConfigError(f"config key 'quality.{key}': {exc}") from None
            explicit = quality.get(f"{key}_args") or {}
            if not isinstance(explicit, dict):
                continue  # _build names the wrong type
            quality[key], quality[f"{key}_args"] = name, {**args, **explicit}


def read_yaml(path: str | Path) -> dict:
    """A config file's top-level mapping.

    Raises:
        ConfigError: unreadable, not YAML (with the line and column), or not a mapping.
    """
    try:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:  # a binary file, or text saved in another encoding
        raise ConfigError(f"config file {path}: expected UTF-8 YAML text, found a byte that is not UTF-8 at "
                          f"position {exc.start}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise ConfigError(f"config file {path}: YAML syntax error{at}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top, found {type(loaded).__name__}")
    return loaded


def _merge(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v


def as_dict(cfg: Config) -> dict:
    """Plain-dict view of a config (for logging and the file sink)."""
    return dataclasses.asdict(cfg)
