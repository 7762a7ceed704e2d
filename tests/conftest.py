"""Shared fixtures: real photos, synthetic clips made with PyAV, and ../shared data when present."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):
    # parallel test processes (pytest -n N) share the cores: torch's OpenMP threads (and the CLI runs a test starts)
    # keep to their share, else N processes of one spinning thread per core each fight over the same cores
    _share = (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))

import cv2  # noqa: E402
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))


def shared_path(rel: str) -> Path:
    """Path under ../shared, skipping the test with a clear reason when it is absent."""
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"needs ../shared/{rel} (development data beside the checkout); not present here")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def group_photo():
    from streamfiqa.eval.synth import sample_photo

    return cv2.imread(str(sample_photo()))


@pytest.fixture(scope="session")
def mtcnn():
    from streamfiqa.detect import create_detector

    return create_detector("mtcnn", score_threshold=0.9)


@pytest.fixture(scope="session")
def synth_clip(tmp_path_factory):
    """A 40-frame clip of 3 real faces, each with one known sharp frame: (path, truth)."""
    from streamfiqa.eval.synth import make_clip

    path = tmp_path_factory.mktemp("clip") / "synth.mp4"
    truth = make_clip(path, faces=3, frames=40, sharp_frames=[12, 20, 29])
    return path, truth


def damaged_copy(src: Path, dst: Path, runs: int, seed: int) -> Path:
    """``src`` written to ``dst`` with ``runs`` stretches of 200 bytes zeroed at seeded places past its first 5,000
    bytes (the container's header), as a recording with lost bytes."""
    import numpy as np

    data = bytearray(Path(src).read_bytes())
    for at in np.random.default_rng(seed).integers(5000, len(data) - 200, runs):
        data[at:at + 200] = bytes(200)
    dst.write_bytes(bytes(data))
    return dst


def clip_frames(path, n: int | None = None) -> list:
    """The first ``n`` (None: all) frames of a clip, BGR as stored."""
    import itertools

    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in itertools.islice(c.decode(video=0), n)]


def write_clip(path, frames, options: dict | None = None, rotation: float | None = None, sample_aspect=None,
               container: str | None = None):
    """Encode BGR ``frames`` as H.264 at 25 fps into ``path``: x264 ``options``, a display ``rotation`` (degrees
    counter-clockwise) and a pixel ``sample_aspect`` (a Fraction) as a phone's or a DVR's file carries them, in
    the ``container`` format FFmpeg names (None: by the file's extension)."""
    import av

    with av.open(str(path), "w", format=container) as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt, s.options = frames[0].shape[1], frames[0].shape[0], "yuv420p", options or {}
        if rotation is not None:
            s.set_display_rotation(rotation)
        if sample_aspect is not None:
            s.codec_context.sample_aspect_ratio = sample_aspect
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="bgr24")))
        c.mux(s.encode())
    return path


@pytest.fixture(scope="session")
def phone_clip(synth_clip, tmp_path_factory):
    """The synthetic clip as a phone stores portrait video: every frame on its side, with a display matrix saying
    "turn a quarter clockwise" (rotation −90). Returns ``(path, the synthetic clip's frames, upright)``."""
    import cv2

    frames = clip_frames(synth_clip[0])
    path = write_clip(tmp_path_factory.mktemp("phone") / "phone.mp4",
                      [cv2.rotate(f, cv2.ROTATE_90_COUNTERCLOCKWISE) for f in frames], {"crf": "12"}, rotation=-90)
    return path, frames


def make_event(i: int):
    """A small ``best`` event of source cam1, track ``i`` (publisher and listener tests)."""
    import time

    import numpy as np

    from streamfiqa.events import Candidate, Event

    disp = np.full((64, 64, 3), i, np.uint8)
    c = Candidate(0.5 + i / 100, "tier0", {"tier0": 0.5}, {"yaw": 0.0}, True, [], i, i / 25, time.time(),
                  np.array([1, 2, 30, 40]), np.zeros((5, 2)), 0.99, np.zeros((112, 112, 3), np.uint8), disp)
    return Event("best", "cam1", i, c, {"end_reason": "eof"})
