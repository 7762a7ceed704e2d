"""FaceQAN (Babnik, Peer, Štruc, ICPR 2022): quality from adversarial embedding stability.

For each crop, ``k`` copies get small uniform noise (±ε) and are then pushed ``l`` times by FGSM steps
(BIM) in the direction that lowers the cosine similarity of their embedding to the clean crop's. The
similarities ``S`` collected over all copies and steps summarise how easily the face's embedding is
moved: a good face keeps high, consistent similarities. A pose term, the cosine similarity between the
crop's and its mirror's embeddings ``s_f``, multiplies it (each step records the similarity of the copy it
starts from, so ``S`` holds the noisy start and the first ``l − 1`` steps, as the official loop does)::

    q_adv = (1 + mean(S)) / 2 · clip(1 − std(S), 0, 1)
    Q     = (q_adv · s_f) ** p

Defaults as the paper: ε = 0.001 (pixels in [0, 1]), l = 5, k = 10, p = 5. Batched: all ``N·k`` copies of a
batch are attacked together (one forward and one backward per step); each copy's gradient depends on
itself only (the FR network is in eval mode), so the result does not depend on the batch.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamfiqa.models.common import batches, pick_device, to_input


class FaceQAN:
    """FaceQAN on any torch FR module (canonical ``[-1, 1]`` RGB input, embedding output).

    Args:
        net: the FR module.
        eps: noise bound and step size, in ``[0, 1]`` pixel units.
        steps: BIM iterations ``l``.
        copies: adversarial copies ``k`` per crop.
        power: exponent ``p``.
        seed: seeds the initial noise (scores are reproducible).
        device: ``auto``, ``cpu``, ``cuda`` ….
        batch_size: crops per attack batch (each brings ``copies`` copies).
        name: scorer name in events.
    """

    def __init__(self, net: nn.Module, eps: float = 1e-3, steps: int = 5, copies: int = 10, power: float = 5.0,
                 seed: int = 0, device: str = "auto", batch_size: int = 8, name: str = "faceqan") -> None:
        if not (0 < eps < 1 and steps >= 1 and copies >= 2 and power > 0):
            raise ValueError(f"FaceQAN: expected 0 < eps < 1, steps ≥ 1, copies ≥ 2, power > 0; found eps={eps}, "
                             f"steps={steps}, copies={copies}, power={power}")
        self.device = pick_device(device)
        self.net = net.eval().to(self.device)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.eps, self.steps, self.copies, self.power = float(eps), int(steps), int(copies), float(power)
        self.seed, self.batch_size, self.name = seed, batch_size, name

    def _embed(self, unit: torch.Tensor) -> torch.Tensor:
        """Embeddings of images in ``[0, 1]``."""
        return F.normalize(self.net(unit * 2 - 1).float(), dim=1)

    def similarities(self, aligned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Adversarial similarities ``(N, l·k)`` and flip similarities ``(N,)``."""
        n = len(aligned)
        adv = np.zeros((n, self.steps * self.copies), np.float32)
        flip = np.zeros(n, np.float32)
        for sl in batches(n, self.batch_size):
            x = (to_input(aligned[sl], self.device) + 1) / 2            # [0, 1]
            b = len(x)
            with torch.no_grad():
                base = self._embed(torch.cat([x, x.flip(-1)]))
            flip[sl] = (base[:b] * base[b:]).sum(1).cpu().numpy()
            base = base[:b].repeat_interleave(self.copies, 0)
            gen = torch.Generator(device="cpu").manual_seed(self.seed + sl.start)
            noise = (torch.rand((b * self.copies, *x.shape[1:]), generator=gen) * 2 - 1) * self.eps
            z = (x.repeat_interleave(self.copies, 0) + noise.to(self.device)).clamp(0, 1)
            sims = []
            for _ in range(self.steps):
                z.requires_grad_(True)
                with torch.enable_grad():
                    cos = (self._embed(z) * base).sum(1)
                    (grad,) = torch.autograd.grad((1 - cos).sum(), z)
                # as the official loop: each step records the similarity it attacked from, then steps
                sims.append(cos.detach().view(b, self.copies))
                z = (z.detach() + self.eps * grad.sign()).clamp(0, 1)
            adv[sl] = torch.cat(sims, 1).cpu().numpy()
        return adv, flip

    def score(self, aligned: np.ndarray) -> np.ndarray:
        """Quality ``(N,)``, higher = better (the paper's ``Q``)."""
        if not len(aligned):
            return np.zeros(0, np.float32)
        adv, flip = self.similarities(aligned)
        q_adv = (1 + adv.mean(1)) / 2 * np.clip(1 - adv.std(1), 0, 1)
        return (np.clip(q_adv * flip, 0, None) ** self.power).astype(np.float32)
