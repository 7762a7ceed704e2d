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


class _ConvBNReLU6(nn.Sequential):
    """conv → BN → ReLU6 (keys ``0``, ``1``)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class _SeparableConv(nn.Module):
    """depthwise 3×3 → BN → ReLU → pointwise → BN → ReLU (keys ``depthwise``, ``bn1``, ``pointwise``, ``bn2``)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
        self.pointwise = nn.Conv2d(c, c, 1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(c), nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn2(self.pointwise(torch.relu(self.bn1(self.depthwise(x))))))


class _InvertedResidual(nn.Module):
    """MobileNetV2 bottleneck under the key ``conv`` (expand, depthwise, linear projection)."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.conv = nn.Sequential(_ConvBNReLU6(cin, hidden, 1), _ConvBNReLU6(hidden, hidden, 3, stride, hidden),
                                  nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class _GDConv(nn.Module):
    """Global depthwise 7×7 convolution → BN (keys ``depthwise``, ``bn``)."""

    def __init__(self, c: int, kernel: int = 7) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c, c, kernel, groups=c, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.depthwise(x))


#: (expansion, channels, repeats, first stride) of the bottleneck stages.
ARC_STAGES = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))
#: Input convention of the ArcFace MobileFaceNet: RGB, ``/255`` then ImageNet mean/std.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ArcMobileFaceNet(nn.Module):
    """MobileFaceNet of foamliu/MobileFaceNet (ArcFace, MS1M; 128-D), in that repository's key layout
    (``conv1.0``, ``dw_conv.*``, ``features.N.conv.*``, ``conv2``, ``gdconv``, ``conv3``, ``bn``).

    ``forward`` takes the library's canonical tensor, ``(N, 3, 112, 112)`` RGB in ``[-1, 1]``, and applies
    the network's own convention (``/255`` then ImageNet mean/std) inside, so every consumer (GraFIQs,
    FaceQAN, DifFIQA, the students) feeds it like any other FR module. ``unnormalised`` returns the
    un-normalised 128-D output; ``forward`` its unit-norm embedding.

    Args:
        gd_kernel: side of the last feature map (7 for 112 px inputs; 4 for the 64-px student).
    """

    def __init__(self, gd_kernel: int = 7) -> None:
        super().__init__()
        self.conv1 = _ConvBNReLU6(3, 64, 3, 2)
        self.dw_conv = _SeparableConv(64)
        layers, cin = [], 64
        for t, c, n, s in ARC_STAGES:
            for i in range(n):
                layers.append(_InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        self.features = nn.Sequential(*layers)
        self.conv2 = _ConvBNReLU6(128, 512, 1)
        self.gdconv = _GDConv(512, gd_kernel)
        self.conv3 = nn.Conv2d(512, 128, 1)
        self.bn = nn.BatchNorm2d(128)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        # [-1, 1] → (x/255 − mean)/std  ==  x·a + b with a = 0.5/std, b = (0.5 − mean)/std
        self.register_buffer("_a", 0.5 / std, persistent=False)
        self.register_buffer("_b", (0.5 - mean) / std, persistent=False)

    def _forward(self, x: torch.Tensor, taps: dict | None = None) -> torch.Tensor:
        x = self.dw_conv(self.conv1(x * self._a + self._b))
        for k, layer in enumerate(self.features):
            x = layer(x)
            if taps is not None and k in (4, 11, 13):
                taps[{4: "block1", 11: "block2", 13: "block3"}[k]] = x
        x = self.gdconv(self.conv2(x))
        if taps is not None:
            taps["block4"] = x
        return self.bn(self.conv3(x)).flatten(1)

    def unnormalised(self, x: torch.Tensor) -> torch.Tensor:
        """Un-normalised 128-D output of ``(N, 3, 112, 112)`` RGB in ``[-1, 1]``."""
        return self._forward(x)

    def forward(self, x: torch.Tensor, taps: dict | None = None) -> torch.Tensor:
        """Unit-norm embedding (``taps`` receives ``block1``…``block4``: the outputs of the first stage,
        the 6-repeat stage, the last stage and the global depthwise convolution)."""
        return nn.functional.normalize(self._forward(x, taps), dim=1)
