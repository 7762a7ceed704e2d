"""Synthetic degradations of aligned 112×112 face crops, and the ranking check built on them.

The embedded default scorer is held to a bar: on real faces, each clean crop must score above
its degraded copy for at least 90 % of the pairs, for every kind below. The severities are
the bar's mildest settings, so passing them passes every harsher one too.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np


def blur(img: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Gaussian blur of ``sigma`` px."""
    return cv2.GaussianBlur(img, (0, 0), sigma)


def downscale(img: np.ndarray, width: int = 32) -> np.ndarray:
    """Down to ``width`` px across the crop (the face is narrower still), then back up."""
    small = cv2.resize(img, (width, width), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, img.shape[1::-1], interpolation=cv2.INTER_LINEAR)


def noise(img: np.ndarray, sigma: float = 20.0, seed: int = 0) -> np.ndarray:
    """Additive Gaussian noise of ``sigma`` grey levels (seeded)."""
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int = 10) -> np.ndarray:
    """JPEG round trip at ``quality``."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def exposure(img: np.ndarray, gain: float = 0.25) -> np.ndarray:
    """Under-exposure: pixel values × ``gain``."""
    return np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def occlude_eyes(img: np.ndarray) -> np.ndarray:
    """A black band over both eyes (rows 38–64 of the ArcFace crop, eyes at row ≈ 51.6)."""
    out = img.copy()
    h = img.shape[0] / 112.0
    out[int(38 * h):int(64 * h)] = 0
    return out


#: The bar's degradation kinds.
KINDS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "blur_s2": blur, "downscale_32px": downscale, "noise_s20": noise, "jpeg_q10": jpeg,
    "exposure_x0.25": exposure, "eye_occlusion": occlude_eyes}


def degrade_all(aligned: np.ndarray) -> dict[str, np.ndarray]:
    """Every kind applied to every crop: ``{kind: (N, 112, 112, 3)}``."""
    return {kind: np.stack([fn(a) for a in aligned]) for kind, fn in KINDS.items()}


def degrade_randomly(aligned: np.ndarray, seed: int) -> tuple[np.ndarray, list[str]]:
    """Each crop replaced by a seeded random choice among clean and every kind; returns the crops and
    the kind applied to each (``"clean"`` when none)."""
    kinds = ["clean", *KINDS]
    applied = [kinds[i] for i in np.random.default_rng(seed).integers(0, len(kinds), len(aligned))]
    out = np.stack([a if k == "clean" else KINDS[k](a) for a, k in zip(aligned, applied)]) if len(aligned) else aligned
    return out, applied


def ranking_table(score: Callable[[np.ndarray], np.ndarray], aligned: np.ndarray) -> dict[str, float]:
    """Per kind, the fraction of faces whose clean crop scores strictly above the degraded one."""
    clean = np.asarray(score(aligned), np.float64)
    return {kind: float(np.mean(clean > np.asarray(score(deg), np.float64)))
            for kind, deg in degrade_all(aligned).items()}
