"""MobileFaceNet in the layout of eDifFIQA(T)'s backbone (keys ``conv1.conv.weight`` …
``linear.weight``, ``bn.*``). Input ``(N, 3, 112, 112)`` RGB in ``[-1, 1]``; output the
L2-normalised 512-D embedding."""
from __future__ import annotations

import torch
from torch import nn


class ConvBlock(nn.Module):
    """conv → BN (→ PReLU unless ``linear``)."""

    def __init__(self, cin: int, cout: int, kernel=1, stride=1, padding=0, groups: int = 1,
                 linear: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        if not linear:
            self.prelu = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.prelu(x) if hasattr(self, "prelu") else x


class DepthWise(nn.Module):
    """1×1 expand → depthwise 3×3 → linear 1×1 projection, optionally residual."""

    def __init__(self, cin: int, cout: int, groups: int, stride: int = 2, residual: bool = False) -> None:
        super().__init__()
        self.conv = ConvBlock(cin, groups)
        self.conv_dw = ConvBlock(groups, groups, 3, stride, 1, groups=groups)
        self.project = ConvBlock(groups, cout, linear=True)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        return x + y if self.residual else y


class Residual(nn.Module):
    """``num_block`` residual :class:`DepthWise` blocks under the key ``model``."""

    def __init__(self, c: int, num_block: int, groups: int) -> None:
        super().__init__()
        self.model = nn.Sequential(*[DepthWise(c, c, groups, 1, residual=True) for _ in range(num_block)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class MobileFaceNet(nn.Module):
    """MobileFaceNet with a 512-D embedding."""

    def __init__(self, embedding_size: int = 512) -> None:
        super().__init__()
        self.conv1 = ConvBlock(3, 64, 3, 2, 1)
        self.conv2_dw = ConvBlock(64, 64, 3, 1, 1, groups=64)
        self.conv_23 = DepthWise(64, 64, 128)
        self.conv_3 = Residual(64, 4, 128)
        self.conv_34 = DepthWise(64, 128, 256)
        self.conv_4 = Residual(128, 6, 256)
        self.conv_45 = DepthWise(128, 128, 512)
        self.conv_5 = Residual(128, 2, 256)
        self.conv_6_sep = ConvBlock(128, 512)
        self.conv_6_dw = ConvBlock(512, 512, 7, 1, 0, groups=512, linear=True)
        self.linear = nn.Linear(512, embedding_size, bias=False)
        self.bn = nn.BatchNorm1d(embedding_size)

    def forward(self, x: torch.Tensor, taps: dict | None = None) -> torch.Tensor:
        """Embed ``x`` (``taps`` receives ``block1``…``block4``: the outputs of conv_3, conv_4,
        conv_5 and conv_6_dw)."""
        x = self.conv_3(self.conv_23(self.conv2_dw(self.conv1(x))))
        if taps is not None:
            taps["block1"] = x
        x = self.conv_4(self.conv_34(x))
        if taps is not None:
            taps["block2"] = x
        x = self.conv_5(self.conv_45(x))
        if taps is not None:
            taps["block3"] = x
        x = self.conv_6_dw(self.conv_6_sep(x))
        if taps is not None:
            taps["block4"] = x
        x = self.bn(self.linear(torch.flatten(x, 1)))
        return nn.functional.normalize(x, dim=1)
