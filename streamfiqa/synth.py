"""Synthetic test/demo clips made with PyAV from the face photo in the ``insightface`` wheel.

Each face moves and grows across the frame; every frame of a face is blurred or
downscaled except one known sharp frame, which a quality filter should pick as best.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


def sample_photo() -> Path:
    """Path of ``insightface/data/images/t1.jpg`` (a group photo with six faces)."""
    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("expected the insightface package (pip install insightface) for its sample photo")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "images" / "t1.jpg"
    if not path.is_file():
        raise FileNotFoundError(f"expected the sample photo at {path}, found nothing")
    return path


def face_patches(photo: str | Path | None = None, count: int = 3, side: int = 128) -> list[np.ndarray]:
    """Square crops (with margin) of the ``count`` largest faces of ``photo``, resized to ``side``."""
    from streamfiqa.align import Aligner
    from streamfiqa.detect import create_detector

    image = cv2.imread(str(photo or sample_photo()))
    faces = create_detector("mtcnn", score_threshold=0.95).detect(image)
    order = np.argsort(-faces.sizes)[:count]
    if len(order) < count:
        raise ValueError(f"expected {count} faces in the photo, found {len(order)}")
    cut = Aligner(display_margin=0.35, display_size=side)
    return [cut.display_crop(image, faces.boxes[k]) for k in order]


@dataclass
class Truth:
    """Where each synthetic face is, and its one sharp frame."""

    sharp_frame: list[int]
    boxes: np.ndarray  # (frames, faces, 4) patch boxes


def _degrade(patch: np.ndarray, kind: int) -> np.ndarray:
    if kind == 0:
        return cv2.GaussianBlur(patch, (0, 0), 2.5)
    h, w = patch.shape[:2]
    small = cv2.resize(patch, (max(w // 4, 8), max(h // 4, 8)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def make_clip(path: str | Path, faces: int = 3, frames: int = 60, fps: int = 25, size=(640, 480),
              sharp_frames: list[int] | None = None, seed: int = 0, crf: int = 14) -> Truth:
    """Write an H.264 clip of moving, scaling faces; returns where they are and their sharp frames.

    Args:
        path: output ``.mp4``/``.mkv`` path.
        faces: number of faces (at most 6), each in its own column.
        frames: clip length in frames.
        fps: frame rate.
        size: ``(width, height)``.
        sharp_frames: the one sharp frame of each face (default: spread over the clip middle).
        seed: seed of the background texture.
        crf: x264 quality (lower is closer to lossless).
    """
    import av

    w, h = size
    patches = face_patches(count=faces)
    sharp = sharp_frames or [int(frames * (0.3 + 0.4 * i / max(faces - 1, 1))) for i in range(faces)]
    rng = np.random.default_rng(seed)
    noise = cv2.resize(rng.integers(60, 200, (h // 16, w // 16, 3), dtype=np.uint8), (w, h),
                       interpolation=cv2.INTER_CUBIC)
    background = cv2.GaussianBlur(noise, (0, 0), 6)
    boxes = np.zeros((frames, faces, 4), np.float32)
    lane = w / faces
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for f in range(frames):
            canvas = background.copy()
            t = f / max(frames - 1, 1)
            for i, patch in enumerate(patches):
                side = int(round(patch.shape[0] * (0.85 + 0.3 * t)))
                x = int(lane * i + 0.1 * lane + 0.15 * lane * t)
                y = int(0.08 * h + 0.25 * h * t)
                side = min(side, w - x, h - y)
                face = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)
                if f != sharp[i]:
                    face = _degrade(face, (f + i) % 2)
                canvas[y:y + side, x:x + side] = face
                boxes[f, i] = (x, y, x + side, y + side)
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return Truth(sharp, boxes)
