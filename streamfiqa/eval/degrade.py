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


def ranking_table(score: Callable[[np.ndarray], np.ndarray], aligned: np.ndarray) -> dict[str, float]:
    """Per kind, the fraction of faces whose clean crop scores strictly above the degraded one."""
    clean = np.asarray(score(aligned), np.float64)
    return {kind: float(np.mean(clean > np.asarray(score(deg), np.float64)))
            for kind, deg in degrade_all(aligned).items()}


# --- Degradations of whole photos, before detection (as a camera produces them) --------------------------------
#
# ``strength`` in [0, 1] spans each kind from mild to severe; :data:`PHOTO_BAR` holds the strengths of the
# ranking bar (noise σ 25, JPEG q 8, blur σ 3 px, a quarter of the resolution, ×0.25 exposure, an eye band).
# Sizes are relative to the face (its inter-eye distance ``eye``, from the clean photo's landmarks) so that
# the same strength means the same loss of detail whatever the photo's resolution.


def _photo_blur(img, s, eye, rng):
    return cv2.GaussianBlur(img, (0, 0), max(eye, 8.0) / 40.0 * (1.0 + 4.0 * s))


def _photo_down(img, s, eye, rng):
    # the face's inter-eye distance falls to 18 px (s = 0) … 5 px (s = 1)
    factor = min(1.0, (18.0 - 13.0 * s) / max(eye, 1.0))
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(int(w * factor), 8), max(int(h * factor), 8)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _photo_noise(img, s, eye, rng):
    return np.clip(img + rng.normal(0, 8.0 + 34.0 * s, img.shape), 0, 255).astype(np.uint8)


def _photo_jpeg(img, s, eye, rng):
    return jpeg(img, int(round(30 - 28 * s)))


def _photo_dark(img, s, eye, rng):
    return exposure(img, 0.45 - 0.35 * s)


def _photo_occlude(img, s, eye, rng, landmarks=None):
    out = img.copy()
    if landmarks is None:
        return out
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    half = eye * (0.25 + 0.35 * s)
    cy = (ly + ry) / 2
    x1, x2 = int(min(lx, rx) - eye * 0.6), int(max(lx, rx) + eye * 0.6)
    out[max(int(cy - half), 0):max(int(cy + half), 0), max(x1, 0):max(x2, 0)] = 0
    return out


#: Photo-level kinds → ``fn(photo, strength, inter_eye_px, rng)``.
PHOTO_KINDS: dict[str, Callable] = {"blur": _photo_blur, "downscale": _photo_down, "noise": _photo_noise,
                                    "jpeg": _photo_jpeg, "dark": _photo_dark, "occlusion": _photo_occlude}
#: The ranking bar's strengths: noise σ 25, JPEG q 8, blur σ = inter-eye/40 × 3, inter-eye 9 px, ×0.25, eye band.
PHOTO_BAR = {"blur": 0.5, "downscale": 0.7, "noise": 0.5, "jpeg": 0.8, "dark": 0.57, "occlusion": 0.5}


def degrade_photo(photo: np.ndarray, kind: str, strength: float, landmarks: np.ndarray,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """One kind of degradation applied to a whole BGR photo.

    Args:
        photo: ``(H, W, 3)`` uint8.
        kind: one of :data:`PHOTO_KINDS`.
        strength: 0 (mild) … 1 (severe).
        landmarks: ``(5, 2)`` of the face on the clean photo (sets the scale; places the eye band).
        rng: noise source (seeded by the caller).
    """
    if kind not in PHOTO_KINDS:
        raise ValueError(f"degrade_photo: unknown kind {kind!r}; valid: {', '.join(PHOTO_KINDS)}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"degrade_photo: expected strength in [0, 1], found {strength}")
    rng = rng or np.random.default_rng(0)
    eye = float(np.linalg.norm(np.asarray(landmarks[1]) - np.asarray(landmarks[0])))
    if kind == "occlusion":
        return _photo_occlude(photo, strength, eye, rng, np.asarray(landmarks))
    return PHOTO_KINDS[kind](photo, strength, eye, rng)
