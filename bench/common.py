"""What the benches share: the machine, the rows, real face crops, the crowd clip, sinks and memory."""
from __future__ import annotations

import json
import logging
import os
import platform
import re
import resource
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
CROWD = ROOT.parent / "shared" / "data" / "videos" / "crowd_walk_1080p.mp4"
SCRFD_2_5G = ROOT.parent / "shared" / "models" / "scrfd" / "scrfd_2.5g_kps.onnx"  # the reference detector
log = logging.getLogger("bench")


def machine() -> dict:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"name": re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{gpu or 'cpu'}-{os.cpu_count()}c").strip("-"),
            "gpu": gpu, "cpus": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__, "python": platform.python_version()}


def emit(results: list, row: dict) -> None:
    results.append(row)
    print(json.dumps(row), flush=True)


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def face_crops(n: int) -> np.ndarray:
    """``n`` real aligned faces (the insightface photo's faces, jittered), as the pipeline holds them."""
    from streamfiqa.eval.synth import default_face_paths
    from streamfiqa.photos import load_faces

    base = load_faces(default_face_paths()[-2:], min_face=40).aligned
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = base[i % len(base)].astype(np.int16) + rng.integers(-3, 4, base.shape[1:])
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


def found_of(truth, found, iou: float = 0.4) -> int:
    """How many of ``truth``'s faces (a reference detector's) ``found`` has, by box overlap of at least ``iou``."""
    from streamfiqa.track.matching import iou_matrix

    if not len(truth) or not len(found):
        return 0
    return int((iou_matrix(truth.boxes, found.boxes).max(1) >= iou).sum())


def write_folder(crops: np.ndarray, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, c in enumerate(crops):
        cv2.imwrite(str(folder / f"{i:05d}.png"), c)
    return folder


class CountSink:
    """A sink that only counts events (benches measure the pipeline, not a disk or a socket)."""

    events = 0

    def emit(self, event) -> None:
        self.events += 1

    def close(self) -> None:
        pass


def loop_clip(src: Path, out: Path, seconds: float) -> int:
    """Remux ``src`` end to end (no re-encoding) until it lasts ``seconds``; returns the number of copies."""
    import av

    with av.open(str(src)) as inp:
        ist = inp.streams.video[0]
        packets = [(bytes(p), p.pts, p.dts, p.duration, p.is_keyframe) for p in inp.demux(ist) if p.dts is not None]
        span = max(p[1] + (p[3] or 0) for p in packets) - min(p[1] for p in packets)
        loops = int(seconds / float(span * ist.time_base)) + 1
        with av.open(str(out), "w") as o:
            ost = o.add_stream_from_template(ist)
            for k in range(loops):
                for data, pts, dts, dur, key in packets:
                    q = av.Packet(data)
                    q.pts, q.dts, q.duration, q.time_base, q.is_keyframe = pts + k * span, dts + k * span, dur, \
                        ist.time_base, key
                    q.stream = ost
                    o.mux(q)
    return loops


def rss_mb() -> float:
    """This process's resident memory now (MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return peak_rss_mb()


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it does not survive exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def config_path(name: str) -> Path:
    """``name``: a path to a config file, else a file under ``configs/``."""
    return Path(name) if Path(name).is_file() else ROOT / "configs" / name


def offline_config(name: str, overrides: list[str] | None = None):
    """The offline defaults with ``name`` (:func:`config_path`) and ``overrides``."""
    from pipelines import offline
    from streamfiqa.config import load_config

    return load_config(config_path(name), ["stats_interval_s=0", 'progress="false"', *(overrides or [])],
                       base=offline.DEFAULTS)


def cpu_s() -> float:
    """User + system CPU seconds this process has used so far (every thread)."""
    t = os.times()
    return t.user + t.system
