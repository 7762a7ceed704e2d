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
from streamfiqa.align import Aligner
from streamfiqa.detect import create_detector
from streamfiqa.eval.facedata import celeba_ids_dir, read_identities, shared_dir


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
              sharp_frames: list[int] | None = None, seed: int = 0, crf: int = 14, gop: int = 0) -> Truth:
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
        gop: keyframe interval in frames (0 = the encoder's default); cameras use about 1–2 s.
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
        if gop:
            stream.codec_context.gop_size = gop
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


# --- Multi-person scenes with crossings, exits and re-entries, and hard cuts (the tracking test bed) ---------


@dataclass
class SceneTruth:
    """Ground truth of a scene clip: per frame, ``(person, x1, y1, x2, y2)`` rows, and where shots start."""

    frames: list
    shot_starts: list
    people: int
    fps: int

    def shot_of(self, frame: int) -> int:
        """Index of the shot ``frame`` belongs to."""
        return sum(1 for s in self.shot_starts if s <= frame) - 1

    def to_json(self) -> dict:
        return {"frames": [[list(map(float, r)) for r in rows] for rows in self.frames],
                "shot_starts": self.shot_starts, "people": self.people, "fps": self.fps}


PATCH_MARGIN = 0.3


def people_patches(count: int, side: int = 150, seed: int = 0) -> list[np.ndarray]:
    """Face patches of ``count`` different people: from ``../shared`` celeba_ids when present (one photo of
    each of ``count`` seeded identities), else the faces of the photos in the ``insightface`` wheel."""
    return [p[0] for p in people_photos(count, 1, side, seed)]


def people_photos(count: int, photos: int = 1, side: int = 150, seed: int = 0) -> list[list[np.ndarray]]:
    """``photos`` face patches from different photos of each of ``count`` different people (celeba_ids in
    ``../shared``: seeded identities whose first ``photos`` photos each show one clear face ≥ 80 px). The
    same person seen by two cameras is two photos of them. Without ``../shared`` only ``photos=1`` exists
    (the faces of the ``insightface`` wheel's photo).

    Raises:
        ValueError: fewer than ``count`` such people.
    """

    det = create_detector("retinaface", score_threshold=0.9)
    cut = Aligner(display_margin=PATCH_MARGIN, display_size=side)
    out: list[list[np.ndarray]] = []

    def patch(image):
        faces = det.detect(image)
        if len(faces) and faces.sizes.max() >= 80 and faces.scores.max() > 0.99:
            return cut.display_crop(image, faces.boxes[int(np.argmax(faces.sizes))])
        return None

    if celeba_ids_dir().is_dir():
        ids = read_identities(celeba_ids_dir())
        rng = np.random.default_rng(seed)
        for person in rng.permutation(np.unique(ids.ids)):
            idx = np.flatnonzero(ids.ids == person)
            if len(idx) < photos:
                continue
            patches = []
            for k in idx[:photos]:
                got = patch(cv2.imread(ids.paths[int(k)]))
                if got is None:
                    break
                patches.append(got)
            if len(patches) == photos:
                out.append(patches)
            if len(out) == count:
                return out
    if photos > 1:
        raise ValueError(f"expected {count} people with {photos} photos each (../shared celeba_ids), "
                         f"found {len(out)}")
    image = cv2.imread(str(sample_photo()))
    faces = det.detect(image)
    out = [[cut.display_crop(image, faces.boxes[k])] for k in np.argsort(-faces.sizes)[:count]]
    if len(out) < count:
        raise ValueError(f"expected {count} different faces for the scene, found {len(out)}")
    return out


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    base = rng.integers(20, 235, 3)
    noise = rng.integers(-50, 50, (h // 16, w // 16, 3))
    tex = cv2.resize(np.clip(base + noise, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    return cv2.GaussianBlur(tex, (0, 0), 5)


def default_script(frames_per_shot: int = 75) -> list[list[tuple]]:
    """Two shots of four people. Shot 1: A and B cross paths (their boxes overlap mid-way); C walks out
    of the frame and comes back; D stands. Shot 2 (after a hard cut, new background): D where B was at the
    cut, A and C elsewhere — a tracker without cuts would continue B's track on D.

    Each entry is ``(person, start_xy, end_xy, first_frame, last_frame)`` in fractions of the frame, per shot.
    """
    n = frames_per_shot
    shot1 = [(0, (0.05, 0.30), (0.70, 0.36), 0, n - 1),          # A: left → right
             (1, (0.72, 0.36), (0.08, 0.30), 0, n - 1),          # B: right → left, crosses A
             (2, (0.40, 0.02), (0.40, 0.02), 0, n // 3),         # C: until a third …
             (2, (0.40, 0.02), (0.40, 0.02), n // 3 + 20, n - 1),  # … out of frame 20 frames, back
             (3, (0.82, 0.62), (0.80, 0.60), 0, n - 1)]          # D: stands in a corner
    shot2 = [(3, (0.08, 0.30), (0.12, 0.32), 0, n - 1),          # D where B ended shot 1
             (0, (0.70, 0.55), (0.60, 0.50), 0, n - 1),
             (2, (0.40, 0.05), (0.45, 0.08), 0, n - 1)]
    return [shot1, shot2]


def _visible(rows: list) -> list:
    """Drop faces mostly hidden (> 40 % of the face box) under faces drawn after them."""
    out = []
    for i, (person, x1, y1, x2, y2) in enumerate(rows):
        mask = np.zeros((int(y2 - y1) + 1, int(x2 - x1) + 1), bool)
        for _, a1, b1, a2, b2 in rows[i + 1:]:
            # the later patch covers its face box plus the margin around it
            m = (a2 - a1) * PATCH_MARGIN
            lo_x, hi_x = int(max(a1 - m - x1, 0)), int(min(a2 + m - x1, mask.shape[1]))
            lo_y, hi_y = int(max(b1 - m - y1, 0)), int(min(b2 + m - y1, mask.shape[0]))
            if hi_x > lo_x and hi_y > lo_y:
                mask[lo_y:hi_y, lo_x:hi_x] = True
        if mask.mean() <= 0.4:
            out.append((person, x1, y1, x2, y2))
    return out


def make_scene(path: str | Path, script: list[list[tuple]] | None = None, frames_per_shot: int = 75,
               fps: int = 25, size=(960, 540), face_side: int = 150, seed: int = 0, crf: int = 18,
               patches: list[np.ndarray] | None = None) -> SceneTruth:
    """Write an H.264 clip of several real people (see :func:`default_script`) and its per-frame truth.
    ``patches`` (one face patch per person of the script) replaces the seeded people."""
    import av

    script = script or default_script(frames_per_shot)
    people = 1 + max(p for shot in script for p, *_ in shot)
    patches = patches if patches is not None else people_patches(people, face_side, seed)
    if len(patches) < people:
        raise ValueError(f"make_scene: expected {people} face patches for the script, found {len(patches)}")
    w, h = size
    rng = np.random.default_rng(seed)
    truth, starts = [], []
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        frame_no = 0
        for shot in script:
            starts.append(frame_no)
            background = _background(rng, w, h)
            for f in range(frames_per_shot):
                canvas = background.copy()
                rows = []
                for person, (x0, y0), (x1, y1), first, last in shot:
                    if not first <= f <= last:
                        continue
                    t = (f - first) / max(last - first, 1)
                    side = int(face_side * (0.95 + 0.1 * np.sin(f / 7.0 + person)))
                    x = int((x0 + (x1 - x0) * t) * w)
                    y = int((y0 + (y1 - y0) * t) * h)
                    x, y = min(max(x, 0), w - side), min(max(y, 0), h - side)
                    canvas[y:y + side, x:x + side] = cv2.resize(patches[person], (side, side),
                                                                interpolation=cv2.INTER_AREA)
                    m = side * (1 - 1 / (1 + 2 * PATCH_MARGIN)) / 2  # the face's box inside its patch
                    rows.append((person, x + m, y + m, x + side - m, y + side - m))
                truth.append(_visible(rows))
                for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="bgr24")):
                    out.mux(packet)
                frame_no += 1
        for packet in stream.encode():
            out.mux(packet)
    return SceneTruth(truth, starts, people, fps)


def default_face_paths() -> list[str]:
    """Real face photos for the degradation check: ../shared deepface set if present, plus the
    photos shipped in the insightface wheel."""
    paths = []

    shared = shared_dir() / "data" / "faces" / "deepface"
    if shared.is_dir():
        paths.append(str(shared))
    try:
        images = sample_photo().parent
    except FileNotFoundError:
        return paths
    return paths + [str(images / n) for n in ("t1.jpg", "Tom_Hanks_54745.png") if (images / n).is_file()]
