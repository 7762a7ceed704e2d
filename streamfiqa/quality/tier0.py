"""Tier-0 quality: cheap per-face components and gates (learned scorers: :mod:`streamfiqa.quality.scorers`).

The selection score used until a learned scorer is configured (``tier0``) is a weighted
geometric mean of terms in ``(0, 1]``::

    size      = min(1, inter_eye / 40)              # ArcFace template has ~35 px between eyes
    pose      = exp(-((yaw / 25)² + (pitch / 25)²) / 2)
    sharpness = s / (s + 60)                        # s: variance of the Laplacian of the aligned crop
    exposure  = (1 - 2·|mean - 0.5|) · (1 - clipped)
    contrast  = min(1, rms_contrast / 0.12)
    detector  = detector score
    tier0     = exp(Σ wᵢ log(max(termᵢ, 1e-3))) / Σ wᵢ), weights 1, 1, 2, 0.5, 0.5, 0.5

Sharpness carries the most weight because blur and low resolution are what most often
ruin CCTV crops; the others mostly break ties and keep grossly wrong faces down.
"""
from __future__ import annotations

from dataclasses import dataclass
import cv2
import numpy as np

from streamfiqa.types import FACE_REGION, Faces

#: Names and order of the columns of :attr:`Quality.components`.
COMPONENTS = ("inter_eye", "yaw", "pitch", "roll", "sharpness", "exposure", "clipped", "contrast",
              "det_score", "in_frame")
_WEIGHTS = {"size": 1.0, "pose": 1.0, "sharpness": 2.0, "exposure": 0.5, "contrast": 0.5, "detector": 0.5}
#: Frontal nose position between eye line (0) and mouth line (1) on the ArcFace template.
_NOSE_Q0 = (71.7366 - 51.599) / (92.2848 - 51.599)


@dataclass(frozen=True)
class Quality:
    """Tier-0 quality of N faces.

    Attributes:
        components: ``(N, len(COMPONENTS))`` float32, columns named by :data:`COMPONENTS`.
        score: ``(N,)`` float32 tier-0 combined score in ``(0, 1]``.
        passed: ``(N,)`` bool, True where every gate holds.
        reasons: per face, the names of the gates it failed.
    """

    components: np.ndarray
    score: np.ndarray
    passed: np.ndarray
    reasons: list

    def __post_init__(self) -> None:
        n = len(self.score)
        if self.components.shape != (n, len(COMPONENTS)) or self.passed.shape != (n,) or len(self.reasons) != n:
            raise ValueError(f"Quality: expected {n} rows everywhere, found components "
                             f"{self.components.shape}, passed {self.passed.shape}, reasons {len(self.reasons)}")

    def row(self, k: int) -> dict[str, float]:
        """Components of face ``k`` as a name → value dict."""
        return {name: round(float(v), 4) for name, v in zip(COMPONENTS, self.components[k])}


def head_pose(landmarks: np.ndarray) -> np.ndarray:
    """Approximate yaw, pitch, roll in degrees from 5 landmarks, ``(N, 5, 2)`` → ``(N, 3)``.

    Roll is the eye-line angle. After undoing roll, yaw follows from the nose's sideways
    offset from the eye–mouth midline (nose depth ≈ half the inter-eye distance), and pitch
    from the nose's height between eye and mouth lines relative to the frontal template.
    Positive yaw: nose towards image right; positive pitch: face tilted up.
    """
    lm = np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
    d = lm[:, 1] - lm[:, 0]
    roll = np.arctan2(d[:, 1], d[:, 0])
    c, s = np.cos(-roll), np.sin(-roll)
    rot = np.stack([np.stack([c, -s], 1), np.stack([s, c], 1)], 1)  # (N, 2, 2)
    p = np.einsum("nij,nkj->nki", rot, lm - lm[:, :1])
    eye_mid, mouth_mid, nose = (p[:, 0] + p[:, 1]) / 2, (p[:, 3] + p[:, 4]) / 2, p[:, 2]
    eye_dist = np.maximum(np.abs(p[:, 1, 0] - p[:, 0, 0]), 1e-3)
    height = np.maximum(mouth_mid[:, 1] - eye_mid[:, 1], 1e-3)
    t = (nose[:, 1] - eye_mid[:, 1]) / height
    mid_x = eye_mid[:, 0] + t * (mouth_mid[:, 0] - eye_mid[:, 0])
    yaw = np.arctan2(nose[:, 0] - mid_x, 0.5 * eye_dist)
    pitch = np.arctan2((_NOSE_Q0 - t) * height, 0.5 * eye_dist)
    return np.degrees(np.stack([yaw, pitch, roll], 1)).astype(np.float32)


def image_stats(aligned: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Sharpness, exposure, clipped fraction and RMS contrast of aligned crops, ``(N, 4)``.

    Measured on the central face region (rows 24–104, cols 16–96) of the 112×112 crop, over the pixels ``valid``
    says came from the frame (None: all). A face cut by the frame's edge has black padding there, and the step
    from face to padding is the sharpest edge of the crop: counted, it made a cut face measure about 1.7× as sharp
    as the same person's whole faces (development clips), which then failed the track's sharpness floor.
    """
    out = np.zeros((len(aligned), 4), np.float32)
    for k, img in enumerate(aligned):
        gray = cv2.cvtColor(img[FACE_REGION], cv2.COLOR_BGR2GRAY)
        lap = cv2.Laplacian(gray, cv2.CV_32F)
        g = gray.astype(np.float32) / 255.0
        inside = None if valid is None else valid[k][FACE_REGION]
        if inside is None or inside.all():
            out[k] = lap.var(), g.mean(), np.mean((gray <= 5) | (gray >= 250)), g.std()
        elif inside.any():  # the Laplacian's 3×3 reach must not touch the padding
            sharp = cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
            gi = gray[inside]
            out[k] = (lap[sharp].var() if sharp.any() else 0.0, g[inside].mean(),
                      np.mean((gi <= 5) | (gi >= 250)), g[inside].std())
    return out


class QualityAssessor:
    """Computes tier-0 components, gates and the combined score of aligned faces.

    Args:
        min_inter_eye: gate, smallest eye distance in source pixels.
        max_yaw: gate, largest |yaw| in degrees.
        max_pitch: gate, largest |pitch| in degrees.
        max_roll: gate, largest |roll| in degrees.
        min_det_score: gate, lowest detector score.
        min_sharpness: gate, lowest variance of the Laplacian.
        max_clipped: gate, largest fraction of clipped pixels.
        min_in_frame: gate, smallest share of the aligned face region inside the frame (a face cut by the frame's
            edge is matched worse by recognisers, though the fast score barely sees it).
    """

    def __init__(self, min_inter_eye: float = 12.0, max_yaw: float = 60.0, max_pitch: float = 50.0,
                 max_roll: float = 60.0, min_det_score: float = 0.0, min_sharpness: float = 0.0,
                 max_clipped: float = 0.5, min_in_frame: float = 1.0) -> None:
        self.gates = {"min_inter_eye": min_inter_eye, "max_yaw": max_yaw, "max_pitch": max_pitch,
                      "max_roll": max_roll, "min_det_score": min_det_score,
                      "min_sharpness": min_sharpness, "max_clipped": max_clipped, "min_in_frame": min_in_frame}

    def assess(self, faces: Faces, aligned: np.ndarray, valid: np.ndarray | None = None) -> Quality:
        """Tier-0 quality of ``faces`` whose aligned crops are ``aligned``, ``valid`` telling which of their pixels
        came from inside the frame (:attr:`streamfiqa.types.Crops.valid`; None: all)."""
        if len(faces) != len(aligned):
            raise ValueError(f"assess: expected one aligned crop per face ({len(faces)}), found {len(aligned)}")
        lm = faces.landmarks
        inter_eye = np.linalg.norm(lm[:, 1] - lm[:, 0], axis=1) if len(faces) else np.zeros(0)
        pose = head_pose(lm) if len(faces) else np.zeros((0, 3), np.float32)
        stats = image_stats(aligned, valid)
        inside = np.ones(len(faces)) if valid is None else valid[(slice(None), *FACE_REGION)].mean((1, 2))
        comp = np.column_stack([inter_eye, pose, stats, faces.scores, inside]).astype(np.float32)
        comp = comp.reshape(-1, len(COMPONENTS))
        return Quality(comp, combine(comp), *self._gate(comp))

    def _gate(self, comp: np.ndarray) -> tuple[np.ndarray, list]:
        col = {n: comp[:, i] for i, n in enumerate(COMPONENTS)}
        g = self.gates
        checks = {
            "min_inter_eye": col["inter_eye"] >= g["min_inter_eye"],
            "max_yaw": np.abs(col["yaw"]) <= g["max_yaw"],
            "max_pitch": np.abs(col["pitch"]) <= g["max_pitch"],
            "max_roll": np.abs(col["roll"]) <= g["max_roll"],
            "min_det_score": col["det_score"] >= g["min_det_score"],
            "min_sharpness": col["sharpness"] >= g["min_sharpness"],
            "max_clipped": col["clipped"] <= g["max_clipped"],
            "min_in_frame": col["in_frame"] >= g["min_in_frame"],
        }
        passed = np.ones(len(comp), bool)
        for ok in checks.values():
            passed &= ok
        reasons = [[name for name, ok in checks.items() if not ok[k]] for k in range(len(comp))]
        return passed, reasons


def combine(components: np.ndarray) -> np.ndarray:
    """The documented tier-0 combination (module docstring) of component rows."""
    col = {n: components[:, i].astype(np.float64) for i, n in enumerate(COMPONENTS)}
    terms = {
        "size": np.minimum(1.0, col["inter_eye"] / 40.0),
        "pose": np.exp(-0.5 * ((col["yaw"] / 25.0) ** 2 + (col["pitch"] / 25.0) ** 2)),
        "sharpness": col["sharpness"] / (col["sharpness"] + 60.0),
        "exposure": (1 - 2 * np.abs(col["exposure"] - 0.5)) * (1 - col["clipped"]),
        "contrast": np.minimum(1.0, col["contrast"] / 0.12),
        "detector": col["det_score"],
    }
    total = sum(_WEIGHTS.values())
    log = sum(w * np.log(np.clip(terms[k], 1e-3, 1.0)) for k, w in _WEIGHTS.items())
    return np.exp(log / total).astype(np.float32)
