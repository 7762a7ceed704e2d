"""The DDPM UNet and Gaussian diffusion of DifFIQA (IJCB 2023), in the official layout.

The UNet (``dim`` 128, ``dim_mults`` 1, 2, 4, 8, 3 channels, 112×112) has the module tree of
the official ``diff_unet.Unet`` so that the trainer checkpoint's weights load strictly:
``init_conv``, ``time_mlp``, ``downs``, ``mid_block1``, ``mid_attn``, ``mid_block2``, ``ups``,
``final_res_block``, ``final_conv``. :class:`Diffusion` holds the cosine schedule (1000 steps),
forward noising and the DDIM reconstruction from step t that DifFIQA uses (objective
``pred_x0``, clipped to ``[-1, 1]``, η = 1, ``sampling_timesteps`` = t).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class WSConv2d(nn.Conv2d):
    """Weight-standardised convolution (per output channel: zero mean, unit biased variance)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eps = 1e-5 if x.dtype == torch.float32 else 1e-3
        w = self.weight
        mean = w.mean(dim=(1, 2, 3), keepdim=True)
        var = w.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
        return F.conv2d(x, (w - mean) * (var + eps).rsqrt(), self.bias, self.stride, self.padding)


class ChanLayerNorm(nn.Module):
    """LayerNorm over channels with a gain ``g`` only."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eps = 1e-5 if x.dtype == torch.float32 else 1e-3
        var = x.var(dim=1, unbiased=False, keepdim=True)
        return (x - x.mean(dim=1, keepdim=True)) * (var + eps).rsqrt() * self.g


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.fn, self.norm = fn, ChanLayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class Residual(nn.Module):
    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device) * -(math.log(10000) / (half - 1)))
        arg = t[:, None].float() * freqs[None]
        return torch.cat((arg.sin(), arg.cos()), dim=-1)


class Block(nn.Module):
    def __init__(self, dim: int, dim_out: int, groups: int = 8) -> None:
        super().__init__()
        self.proj = WSConv2d(dim, dim_out, 3, padding=1)
        self.norm = nn.GroupNorm(groups, dim_out)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, scale_shift=None) -> torch.Tensor:
        x = self.norm(self.proj(x))
        if scale_shift is not None:
            scale, shift = scale_shift
            x = x * (scale + 1) + shift
        return self.act(x)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, dim_out: int, time_emb_dim: int, groups: int = 8) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(time_emb_dim, dim_out * 2))
        self.block1 = Block(dim, dim_out, groups)
        self.block2 = Block(dim_out, dim_out, groups)
        self.res_conv = nn.Conv2d(dim, dim_out, 1) if dim != dim_out else nn.Identity()

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        scale_shift = self.mlp(t)[:, :, None, None].chunk(2, dim=1)
        return self.block2(self.block1(x, scale_shift)) + self.res_conv(x)


class LinearAttention(nn.Module):
    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32) -> None:
        super().__init__()
        self.scale, self.heads = dim_head ** -0.5, heads
        hidden = dim_head * heads
        self.to_qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Sequential(nn.Conv2d(hidden, dim, 1), ChanLayerNorm(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = (t.reshape(b, self.heads, -1, h * w) for t in self.to_qkv(x).chunk(3, dim=1))
        q = q.softmax(dim=-2) * self.scale
        k = k.softmax(dim=-1)
        v = v / (h * w)
        context = torch.einsum("bhdn,bhen->bhde", k, v)
        out = torch.einsum("bhde,bhdn->bhen", context, q)
        return self.to_out(out.reshape(b, -1, h, w))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int = 4, dim_head: int = 32, scale: float = 10) -> None:
        super().__init__()
        self.scale, self.heads = scale, heads
        hidden = dim_head * heads
        self.to_qkv = nn.Conv2d(dim, hidden * 3, 1, bias=False)
        self.to_out = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = (t.reshape(b, self.heads, -1, h * w) for t in self.to_qkv(x).chunk(3, dim=1))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)  # over positions, as the official code
        attn = (torch.einsum("bhdi,bhdj->bhij", q, k) * self.scale).softmax(dim=-1)
        out = torch.einsum("bhij,bhdj->bhid", attn, v)
        return self.to_out(out.permute(0, 1, 3, 2).reshape(b, -1, h, w))


class Unet(nn.Module):
    """DifFIQA's DDPM UNet (no self-conditioning, fixed sinusoidal time embedding)."""

    def __init__(self, dim: int = 128, dim_mults=(1, 2, 4, 8), channels: int = 3, groups: int = 8) -> None:
        super().__init__()
        self.channels = channels
        self.init_conv = nn.Conv2d(channels, dim, 7, padding=3)
        dims = [dim, *(dim * m for m in dim_mults)]
        in_out = list(zip(dims[:-1], dims[1:]))
        tdim = dim * 4
        self.time_mlp = nn.Sequential(SinusoidalPosEmb(dim), nn.Linear(dim, tdim), nn.GELU(), nn.Linear(tdim, tdim))
        self.downs, self.ups = nn.ModuleList(), nn.ModuleList()
        for i, (din, dout) in enumerate(in_out):
            last = i == len(in_out) - 1
            self.downs.append(nn.ModuleList([
                ResnetBlock(din, din, tdim, groups), ResnetBlock(din, din, tdim, groups),
                Residual(PreNorm(din, LinearAttention(din))),
                nn.Conv2d(din, dout, 3, padding=1) if last else nn.Conv2d(din, dout, 4, 2, 1)]))
        mid = dims[-1]
        self.mid_block1 = ResnetBlock(mid, mid, tdim, groups)
        self.mid_attn = Residual(PreNorm(mid, Attention(mid)))
        self.mid_block2 = ResnetBlock(mid, mid, tdim, groups)
        for i, (din, dout) in enumerate(reversed(in_out)):
            last = i == len(in_out) - 1
            self.ups.append(nn.ModuleList([
                ResnetBlock(dout + din, dout, tdim, groups), ResnetBlock(dout + din, dout, tdim, groups),
                Residual(PreNorm(dout, LinearAttention(dout))),
                nn.Conv2d(dout, din, 3, padding=1) if last
                else nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(dout, din, 3, padding=1))]))
        self.final_res_block = ResnetBlock(dim * 2, dim, tdim, groups)
        self.final_conv = nn.Conv2d(dim, channels, 1)

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        x = self.init_conv(x)
        r = x.clone()
        t = self.time_mlp(time)
        skips = []
        for block1, block2, attn, down in self.downs:
            x = block1(x, t)
            skips.append(x)
            x = attn(block2(x, t))
            skips.append(x)
            x = down(x)
        x = self.mid_block2(self.mid_attn(self.mid_block1(x, t)), t)
        for block1, block2, attn, up in self.ups:
            x = block1(torch.cat((x, skips.pop()), dim=1), t)
            x = attn(block2(torch.cat((x, skips.pop()), dim=1), t))
            x = up(x)
        return self.final_conv(self.final_res_block(torch.cat((x, r), dim=1), t))


def cosine_alphas_cumprod(timesteps: int = 1000, s: float = 0.008) -> torch.Tensor:
    """ᾱ_t of the cosine schedule (Nichol & Dhariwal), betas clipped to 0.999, float64."""
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64)
    ac = torch.cos(((x / timesteps) + s) / (1 + s) * math.pi * 0.5) ** 2
    betas = torch.clip(1 - ac[1:] / ac[:-1], 0, 0.999)
    return torch.cumprod(1.0 - betas, dim=0)


class Diffusion(nn.Module):
    """Forward noising and DDIM reconstruction around a :class:`Unet` predicting x₀."""

    def __init__(self, unet: Unet, timesteps: int = 1000, eta: float = 1.0) -> None:
        super().__init__()
        self.model, self.eta = unet, eta
        ac = cosine_alphas_cumprod(timesteps)
        # Computed in float64 and stored as float32, like the official buffers.
        for name, val in (("alphas_cumprod", ac), ("sqrt_ac", ac.sqrt()), ("sqrt_1m_ac", (1 - ac).sqrt()),
                          ("sqrt_recip_ac", (1 / ac).sqrt()), ("sqrt_recipm1_ac", (1 / ac - 1).sqrt())):
            self.register_buffer(name, val.to(torch.float32), persistent=False)

    def q_sample(self, x0: torch.Tensor, t: int, noise: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε."""
        return self.sqrt_ac[t] * x0 + self.sqrt_1m_ac[t] * noise

    def reconstruct(self, x_t: torch.Tensor, t: int, noises: torch.Tensor) -> torch.Tensor:
        """DDIM from step ``t`` back to x₀ with ``t`` sampling steps, as the official ``ddim_sample_at_t``.

        The official time grid is ``int(linspace(-1, t-1, t+2))`` reversed, which starts at t−1
        and visits step 0 twice; this is kept so scores match the reference. ``noises`` holds
        one ε per step that adds noise (``t + 1`` of them, each shaped like ``x_t``).
        """
        grid = [int(v) for v in torch.linspace(-1, t - 1, steps=t + 2).tolist()]
        grid = grid[::-1]
        img = x_t
        for step, (time, nxt) in enumerate(zip(grid[:-1], grid[1:])):
            tt = torch.full((len(img),), time, device=img.device, dtype=torch.long)
            x0 = self.model(img, tt).clamp(-1.0, 1.0)
            if nxt < 0:
                img = x0
                continue
            a, an = self.alphas_cumprod[time], self.alphas_cumprod[nxt]
            eps = (self.sqrt_recip_ac[time] * img - x0) / self.sqrt_recipm1_ac[time]
            sigma = self.eta * ((1 - a / an) * (1 - an) / (1 - a)).sqrt()
            c = (1 - an - sigma ** 2).sqrt()
            img = x0 * an.sqrt() + c * eps + sigma * noises[step]
        return img
