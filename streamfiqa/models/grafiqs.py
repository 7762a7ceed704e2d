"""GraFIQs (Kolf, Damer, Boutros, CVPRW 2024): quality from the gradients that BatchNorm
statistics discrepancies induce in a pretrained FR network.

Forward hooks on every ``BatchNorm2d`` with running statistics take the per-image channel
mean and biased variance of the BN's input. An image's loss is the mean over BN layers of
``MSE(mean, running_mean) + MSE(var, running_var)``. Because each image's loss uses only its
own statistics (eval-mode BN never mixes images), one backward of the summed loss over a
batch yields every image's own gradients. The raw GraFIQs value is ``Σ |∂loss/∂p|`` at the
gradient point ``p`` (the input image or the output of block1…block4).

Direction: a larger gradient means the image's statistics are further from the training
distribution, i.e. lower quality, which we measured (see the README): the exposed score is
``−Σ|grad|`` so that higher = better; ``raw`` gives the unsigned sum of the official code.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from streamfiqa.models.common import batches, pick_device, to_input

POINTS = ("image", "block1", "block2", "block3", "block4")


class GraFIQs:
    """Batched GraFIQs on a torch FR network.

    Args:
        net: FR module ``forward(x, taps=None)`` on ``[-1, 1]`` RGB; it must contain
            ``BatchNorm2d`` layers with running statistics and fill ``taps`` with
            ``block1``…``block4`` when a block point is used.
        point: gradient point, one of :data:`POINTS`.
        device: ``auto``, ``cpu``, ``cuda`` ….
        batch_size: images per forward/backward.
        name: scorer name in events.
        color: ``rgb`` (what the network was trained on) or ``bgr`` (channels reversed, as the official
            GraFIQs script feeds them unless ``--bgr2rgb``).
    """

    def __init__(self, net: nn.Module, point: str = "image", device: str = "auto", batch_size: int = 32,
                 name: str = "grafiqs", color: str = "rgb") -> None:
        if color not in ("rgb", "bgr"):
            raise ValueError(f"GraFIQs: expected color rgb or bgr, found {color!r}")
        self.color = color
        if point not in POINTS:
            raise ValueError(f"GraFIQs: expected point in {', '.join(POINTS)}, found {point!r}")
        self.device = pick_device(device)
        self.net = net.eval().to(self.device)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.bns = [m for m in self.net.modules()
                    if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None]
        if not self.bns:
            raise ValueError("GraFIQs: expected an FR network with BatchNorm2d layers that keep running "
                             "statistics, found none")
        self.point, self.batch_size, self.name = point, batch_size, name

    def losses(self, x: torch.Tensor, taps: dict | None = None) -> torch.Tensor:
        """Per-image BN-statistics loss ``(N,)`` of the normalised batch ``x``."""
        seen: list[tuple[nn.BatchNorm2d, torch.Tensor]] = []
        hooks = [bn.register_forward_hook(lambda m, inp, out: seen.append((m, inp[0]))) for bn in self.bns]
        try:
            self.net(x, taps)
        finally:
            for h in hooks:
                h.remove()
        loss = x.new_zeros(len(x))
        for bn, inp in seen:
            mean = inp.mean(dim=(2, 3))
            var = inp.var(dim=(2, 3), unbiased=False)
            loss = loss + ((mean - bn.running_mean) ** 2).mean(1) + ((var - bn.running_var) ** 2).mean(1)
        return loss / len(seen)

    def raw(self, aligned: np.ndarray) -> np.ndarray:
        """The official GraFIQs value ``Σ|grad|`` per crop (higher = worse)."""
        out = np.zeros(len(aligned), np.float32)
        for sl in batches(len(aligned), self.batch_size):
            x = to_input(aligned[sl], self.device)
            if self.color == "bgr":  # the official script's default: BGR pixels in the RGB slots
                x = x.flip(1)
            x = x.contiguous().requires_grad_(True)
            taps: dict = {}
            with torch.enable_grad():
                loss = self.losses(x, taps)
                target = x if self.point == "image" else taps[self.point]
                (grad,) = torch.autograd.grad(loss.sum(), target)
            out[sl] = grad.abs().flatten(1).sum(1).detach().cpu().numpy()
        return out

    def score(self, aligned: np.ndarray) -> np.ndarray:
        """Quality, higher = better: ``−Σ|grad|``."""
        return -self.raw(aligned)
