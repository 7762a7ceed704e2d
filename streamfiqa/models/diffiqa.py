"""DifFIQA (Babnik, Peer, Štruc, IJCB 2023): quality as the stability of FR embeddings under
forward diffusion and DDIM reconstruction.

For each image and its horizontal flip, ``repeats`` noisy copies at step ``t`` are
reconstructed with DDIM. The score is the mean of five terms, each the cosine similarity
between the original's embedding and that of (1) the noisy, (2) the reconstructed,
(3) the flipped noisy, (4) the flipped reconstructed copies (each averaged over the repeats)
and (5) the flipped image.

Seeding: one bank of noise is drawn from ``seed`` and reused for every image, so an image's
score depends neither on its batch nor on the images scored before it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from streamfiqa.models.common import batches, load_checkpoint, load_strict, pick_device, to_input
from streamfiqa.models.unet import Diffusion, Unet

#: Official UNet hyper-parameters (``configs/train_config.yaml``).
UNET_ARGS = {"dim": 128, "dim_mults": (1, 2, 4, 8), "channels": 3}


def unet_state(ckpt: dict, weights: str = "model") -> dict:
    """The UNet's state dict from a DifFIQA trainer checkpoint, or a bare UNet state dict.

    Args:
        ckpt: ``{'step', 'model', 'opt', 'ema', 'scaler'}`` as saved by the official trainer.
        weights: ``ema`` (``ema['ema_model.model.*']``) or ``model`` (``model['model.*']``,
            what the official ``inference.py`` loads).
    """
    if "init_conv.weight" in ckpt:
        return ckpt
    if weights not in ("ema", "model"):
        raise ValueError(f"DifFIQA: expected weights 'ema' or 'model', found {weights!r}")
    if weights not in ckpt:
        raise ValueError(f"DifFIQA: expected a trainer checkpoint with key {weights!r}, found keys {list(ckpt)[:6]}")
    prefix = "ema_model.model." if weights == "ema" else "model."
    state = {k[len(prefix):]: v for k, v in ckpt[weights].items() if k.startswith(prefix)}
    if not state:
        raise ValueError(f"DifFIQA: no keys with prefix {prefix!r} under {weights!r}")
    return state


def load_unet(path: str | Path, weights: str = "model", **unet_args) -> Unet:
    """Build the official UNet and load a DifFIQA checkpoint strictly."""
    unet = Unet(**{**UNET_ARGS, **unet_args})
    load_strict(unet, unet_state(load_checkpoint(path), weights), f"DifFIQA UNet {path}")
    return unet.eval()


class DifFIQA:
    """Batched, seeded DifFIQA.

    Args:
        unet: the trained UNet (see :func:`load_unet`).
        fr: a torch FR model (``.net`` on ``[-1, 1]`` RGB 112×112, e.g. ``create_fr('facenet')``).
        t: forward-noise step (official 5).
        repeats: noisy copies per image and flip (official 10).
        seed: seed of the noise bank.
        batch_size: images per UNet batch (each image costs ``2 × repeats`` UNet rows).
        device: ``auto``, ``cpu``, ``cuda`` ….
        name: scorer name in events.
    """

    def __init__(self, unet: Unet, fr, t: int = 5, repeats: int = 10, seed: int = 0, batch_size: int = 4,
                 device: str = "auto", name: str = "diffiqa") -> None:
        if not 1 <= t < 1000 or repeats < 1:
            raise ValueError(f"DifFIQA: expected 1 ≤ t < 1000 and repeats ≥ 1, found t={t}, repeats={repeats}")
        self.device = pick_device(device)
        self.diffusion = Diffusion(unet).eval().to(self.device)
        self.fr_net = fr.net.to(self.device)
        self.t, self.repeats, self.batch_size, self.name = t, repeats, batch_size, name
        gen = torch.Generator().manual_seed(seed)
        # [0]: forward noise; [1:]: one ε per DDIM step. Shape (t + 2, 2, repeats, 3, 112, 112).
        self.noise = torch.randn((t + 2, 2, repeats, 3, 112, 112), generator=gen).to(self.device)

    @torch.inference_mode()
    def score(self, aligned: np.ndarray) -> np.ndarray:
        """DifFIQA quality of ``(N, 112, 112, 3)`` BGR crops, higher = better."""
        out = np.zeros(len(aligned), np.float32)
        n = self.repeats
        for sl in batches(len(aligned), self.batch_size):
            x = to_input(aligned[sl], self.device)
            b = len(x)
            start = torch.stack((x, x.flip(3)), 1)[:, :, None].expand(b, 2, n, 3, 112, 112)
            rows = lambda v: v.reshape(b * 2 * n, 3, 112, 112)  # noqa: E731
            noisy = self.diffusion.q_sample(rows(start), self.t, rows(self.noise[0].expand(b, 2, n, 3, 112, 112)))
            steps = self.noise[1:].unsqueeze(1).expand(-1, b, 2, n, 3, 112, 112).reshape(-1, b * 2 * n, 3, 112, 112)
            recon = self.diffusion.reconstruct(noisy, self.t, steps)
            emb = F.normalize(self.fr_net(torch.cat((torch.stack((x, x.flip(3)), 1).reshape(-1, 3, 112, 112),
                                                    noisy, recon))).float(), dim=1)
            base, flip = emb[:2 * b].reshape(b, 2, -1).unbind(1)
            nz, rc = emb[2 * b:].reshape(2, b, 2, n, -1).unbind(0)
            cos = lambda e: (e * base[:, None]).sum(-1).mean(-1)  # noqa: E731 - (b, n, D) → (b,)
            terms = (cos(nz[:, 0]), cos(rc[:, 0]), cos(nz[:, 1]), cos(rc[:, 1]), (flip * base).sum(-1))
            out[sl] = (sum(terms) / 5).cpu().numpy()
        return out
