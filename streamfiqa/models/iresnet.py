"""IResNet face-recognition backbones in the insightface ``arcface_torch`` layout.

State-dict keys match the official checkpoints (``conv1``, ``bn1``, ``prelu``,
``layer1``…``layer4``, ``bn2``, ``fc``, ``features``), so insightface, CosFace/eDifFIQA and
GraFIQs weights load strictly. Input: ``(N, 3, 112, 112)`` RGB in ``[-1, 1]``; output: the
512-D un-normalised embedding.
"""
from __future__ import annotations

import torch
from torch import nn

#: Blocks per stage of each depth.
DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 200: (6, 26, 60, 6)}


class IBasicBlock(nn.Module):
    """BN → conv3×3 → BN → PReLU → conv3×3(stride) → BN, plus the (projected) shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """IResNet-``depth`` with a 512-D (``num_features``) embedding head.

    Args:
        depth: one of :data:`DEPTHS`.
        num_features: embedding size.
        dropout: dropout before ``fc`` (inactive in eval mode).
    """

    def __init__(self, depth: int = 50, num_features: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"IResNet: expected depth in {sorted(DEPTHS)}, found {depth}")
        self.depth = depth
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        inplanes = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), DEPTHS[depth]), 1):
            layers = [IBasicBlock(inplanes, planes, 2)] + [IBasicBlock(planes, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*layers))
            inplanes = planes
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(512 * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)

    def forward(self, x: torch.Tensor, taps: dict | None = None) -> torch.Tensor:
        """Embed ``x``; if ``taps`` is a dict, the outputs of ``layer1``…``layer4`` are stored in it
        as ``block1``…``block4`` (the gradient points of GraFIQs)."""
        x = self.prelu(self.bn1(self.conv1(x)))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            if taps is not None:
                taps[f"block{i}"] = x
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def depth_from_state(state: dict, prefix: str = "") -> int | None:
    """The depth whose ``layer3`` block count the state dict's ``{prefix}layer3.N.*`` keys show, or None."""
    blocks = {int(k[len(prefix):].split(".")[1]) for k in state if k.startswith(f"{prefix}layer3.")}
    return next((d for d, b in DEPTHS.items() if blocks and b[2] == max(blocks) + 1), None)


def iresnet(depth: int, **kwargs) -> IResNet:
    """IResNet of the given depth (18, 34, 50, 100, 200)."""
    return IResNet(depth, **kwargs)
