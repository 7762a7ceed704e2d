"""Faces from photo files: read, detect, align and score them (``streamfiqa score``, the toolkit, benches)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from streamfiqa.align import Aligner
from streamfiqa.detect import create_detector
from streamfiqa.io.media import VIDEO_EXTENSIONS, image_files
from streamfiqa.quality.scorers import create_scorer
from streamfiqa.quality.tier0 import QualityAssessor

log = logging.getLogger(__name__)


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
    resized to 112×112. Unreadable images and images without faces are logged and skipped.

    Raises:
        ValueError: there were files and none of them was a readable image.
    """

    crops, where, idx, t0 = [], [], [], []
    det = None if aligned else _detector(detector, min_face)
    aligner, assessor = Aligner(), QualityAssessor()
    files, unreadable = image_files(paths), 0
    for path in files:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            log.warning("%s: not a readable image, skipped", path)
            unreadable += 1
            continue
        if aligned:
            if img.shape[0] != img.shape[1]:  # 112×96 (SphereFace's layout) or a loose crop, not ArcFace's square
                log.warning("%s: %d×%d is no square aligned crop: stretched to 112×112, so its score is of a "
                            "distorted face (expected crops aligned to ArcFace's 112×112 template)", path,
                            img.shape[1], img.shape[0])
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
        q = assessor.assess(faces, c.aligned, c.valid)
        crops += list(c.aligned)
        where += [str(path)] * len(faces)
        idx += list(range(len(faces)))
        t0 += list(q.score)
    if files and unreadable == len(files):
        video = Path(files[0]).suffix.lower() in VIDEO_EXTENSIONS
        hint = f"; a video's faces are scored by a run: streamfiqa {files[0]} --out OUT" if video else ""
        raise ValueError(f"expected readable images, found none: {len(files)} file(s) such as {files[0]} could not "
                         f"be read as images{hint}")
    arr = np.stack(crops) if crops else np.zeros((0, 112, 112, 3), np.uint8)
    return FaceSet(arr, where, idx, np.asarray(t0, np.float32))


def _detector(name: str, min_face: int):
    return create_detector(name, min_face=min_face, score_threshold=0.9)


def score_faces(faces: FaceSet, scorer: str, args: dict | None = None) -> np.ndarray:
    """Scores of a :class:`FaceSet` by the scorer ``scorer`` (``tier0`` for the tier-0 combination)."""
    if scorer == "tier0":
        if np.isnan(faces.tier0).any():
            raise ValueError("tier0 needs detected faces (landmarks in the source image); drop --aligned")
        return faces.tier0

    model = create_scorer(scorer, **(args or {}))
    return np.asarray(model.score(faces.aligned), np.float32) if len(faces.aligned) else np.zeros(0, np.float32)
