"""Faithful re-runs of the official inference loops, for side-by-side ratios (same machine, same run).

Each follows the reference repository's ``inference.py`` / ``extract_grafiqs.py``: images read from
files by a ``DataLoader`` with the official transforms (PIL → resize 112 → ``ToTensor`` →
``Normalize(0.5, 0.5)``, written here without torchvision), fp32, the official batch sizes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


class FolderDataset(torch.utils.data.Dataset):
    """The official ``ImageDataset``: every image file of a folder, RGB, with the official transform."""

    def __init__(self, folder: str | Path, flip: bool = False) -> None:
        self.items = sorted(str(p) for p in Path(folder).iterdir() if p.suffix in (".png", ".jpg"))
        self.flip = flip

    def __len__(self) -> int:
        return len(self.items)

    @staticmethod
    def transform(img: Image.Image) -> torch.Tensor:
        img = img.resize((112, 112), Image.BILINEAR) if img.size != (112, 112) else img
        x = torch.from_numpy(np.asarray(img, np.float32) / 255.0).permute(2, 0, 1)
        return (x - 0.5) / 0.5

    def __getitem__(self, i):
        img = Image.open(self.items[i]).convert("RGB")
        if self.flip:
            return self.items[i], self.transform(img), self.transform(img.transpose(Image.FLIP_LEFT_RIGHT))
        return self.items[i], self.transform(img)


@torch.no_grad()
def ediffiqa_loop(model: torch.nn.Module, folder: str | Path, batch_size: int = 128, device: str = "cpu") -> dict:
    """eDifFIQA's ``inference.py``: DataLoader(batch 128) → model → squeeze → numpy."""
    model = model.to(device).eval()
    scores = {}
    for names, imgs in torch.utils.data.DataLoader(FolderDataset(folder), batch_size=batch_size):
        preds = model(imgs.to(device)).detach().squeeze().cpu().numpy()
        scores.update(zip(names, np.atleast_1d(preds)))
    return scores


def grafiqs_loop(net: torch.nn.Module, folder: str | Path, device: str = "cpu") -> dict:
    """GraFIQs' ``extract_grafiqs.py``: one image at a time, batch-statistics hooks, one backward
    to the image and block1…4, Σ|grad| per point."""
    net = net.to(device).eval()
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    stats: list = []

    def hook(m, inp, out):
        stats.append((inp[0].mean([0, 2, 3]), inp[0].var([0, 2, 3], unbiased=False), m.running_mean, m.running_var))

    hooks = [m.register_forward_hook(hook) for m in bns]
    mse = torch.nn.MSELoss()
    scores = {}
    try:
        for path in FolderDataset(folder).items:
            x = FolderDataset.transform(Image.open(path).convert("RGB"))[None].to(device).requires_grad_(True)
            stats.clear()
            taps: dict = {}
            net(x, taps)
            loss = sum(mse(m, rm) + mse(v, rv) for m, v, rm, rv in stats) / len(stats)
            grads = torch.autograd.grad(loss, [x, taps["block1"], taps["block2"], taps["block3"], taps["block4"]])
            scores[path] = [float(g[0].abs().sum()) for g in grads]
    finally:
        for h in hooks:
            h.remove()
    return scores


@torch.no_grad()
def diffiqa_loop(diffusion, fr_net: torch.nn.Module, folder: str | Path, t: int = 5, repeats: int = 10,
                 batch_size: int = 64, device: str = "cpu") -> dict:
    """DifFIQA's ``inference.py``: batches of ``batch_size // (2·repeats)`` images, image and flip
    repeated, one global-RNG noise draw, DDIM back, FR on all, mean of the five cosine terms."""
    per = max(batch_size // (2 * repeats), 1)
    scores = {}
    for names, img, flip in torch.utils.data.DataLoader(FolderDataset(folder, flip=True), batch_size=per):
        start = torch.cat((img, flip)).to(device).repeat_interleave(repeats, dim=0)
        noisy = diffusion.q_sample(start, t, torch.randn_like(start))
        steps = torch.randn((t + 1, *start.shape), device=device)
        recon = diffusion.reconstruct(noisy, t, steps)
        out = F.normalize(fr_net(torch.cat((start, noisy, recon))), dim=1)
        sb, sf, nb, nf, rb, rf = out.chunk(6)
        cos = lambda a, b: F.cosine_similarity(a, b).reshape(-1, repeats).mean(1)  # noqa: E731
        q = (cos(sb, nb) + cos(sb, rb) + cos(sb, nf) + cos(sb, rf) + cos(sb, sf)) / 5
        scores.update(zip(names, q.cpu().numpy()))
    return scores
