"""eDifFIQA (Babnik, Peer, Štruc, TBIOM 2024): an FR backbone plus an MLP quality head.

Variants: S (IResNet-18), T (MobileFaceNet), M (IResNet-50), L (IResNet-100). The module has the
children ``base_model`` and ``mlp`` (``l1``: 512→1024, GELU, ``l2``: 1024→1), as in the official
checkpoints, which load strictly. Input 112×112 RGB, ``(x − 0.5) / 0.5``; higher = better.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from streamfiqa.backends import cache_dir as default_cache_dir
from streamfiqa.backends import create_backend
from streamfiqa.backends.export import export_onnx
from streamfiqa.models.common import load_checkpoint, load_strict, to_input
from streamfiqa.models.iresnet import depth_from_state, iresnet
from streamfiqa.models.mobilefacenet import MobileFaceNet

log = logging.getLogger(__name__)

#: Variant → backbone builder.
VARIANTS = {"S": lambda: iresnet(18), "T": MobileFaceNet, "M": lambda: iresnet(50), "L": lambda: iresnet(100)}


class MLP(nn.Module):
    """The quality head: Linear(512, 1024) → GELU → Linear(1024, 1)."""

    def __init__(self, in_dim: int = 512, hidden_dim: int = 1024, out_dim: int = 1) -> None:
        super().__init__()
        self.l1 = nn.Linear(in_dim, hidden_dim)
        self.ac = nn.GELU()
        self.l2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(self.ac(self.l1(x)))


class EDifFIQA(nn.Module):
    """Backbone + head; ``forward`` returns ``(N,)`` quality scores."""

    def __init__(self, variant: str = "S") -> None:
        super().__init__()
        variant = variant.upper()
        if variant not in VARIANTS:
            raise ValueError(f"eDifFIQA: expected variant in {', '.join(VARIANTS)}, found {variant!r}")
        self.variant = variant
        self.base_model = VARIANTS[variant]()
        self.mlp = MLP()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.base_model(x)).squeeze(1)


def detect_variant(state: dict) -> str:
    """The variant whose layout the state dict has (from its keys), e.g. ``"S"``.

    Raises:
        ValueError: no variant matches.
    """
    if any(k.startswith("base_model.conv_23.") for k in state):
        return "T"
    variant = {18: "S", 50: "M", 100: "L"}.get(depth_from_state(state, "base_model."))
    if variant:
        return variant
    raise ValueError("eDifFIQA: expected a state_dict with keys base_model.* and mlp.* of variant S/T/M/L, "
                     f"found keys like {list(state)[:3]}")


def load_ediffiqa(path: str | Path, variant: str | None = None) -> EDifFIQA:
    """Build eDifFIQA and load an official checkpoint strictly (variant detected when None)."""
    state = load_checkpoint(path)
    state = state.get("state_dict", state)
    variant = (variant or detect_variant(state)).upper()
    model = EDifFIQA(variant)
    load_strict(model, state, f"eDifFIQA({variant}) {path}")
    return model.eval()


def exported_onnx(model: EDifFIQA, weights: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The model's ONNX export in the engine cache (made once per checkpoint)."""
    import hashlib

    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:12]
    path = Path(cache_dir or default_cache_dir()) / f"ediffiqa_{model.variant.lower()}-{digest}.onnx"
    if not path.is_file():
        log.info("exporting %s to %s", weights, path)
        export_onnx(model, path)
    return path


class EDifFIQAScorer:
    """The fast tier: eDifFIQA on aligned crops through a backend.

    Args:
        weights: official checkpoint (``ediffiqaS.pth`` …).
        variant: S, T, M or L; detected from the checkpoint when None.
        backend: ``torch``, ``onnxruntime``, ``tensorrt`` or ``auto`` (the latter two export ONNX
            to the engine cache first).
        device: ``auto``, ``cpu``, ``cuda`` … (torch backend).
        batch_size: largest batch per run.
        half: fp16 on CUDA (torch backend); ``precision`` for TensorRT.
        precision: the backend's precision; ``None`` = its default (TensorRT: ``fp16``; ``fp32`` also).
        onnx_path: use this ONNX export instead of making one.
    """

    def __init__(self, weights: str, variant: str | None = None, backend: str = "torch", device: str = "auto",
                 batch_size: int = 256, half: bool = False, precision: str | None = None,
                 onnx_path: str | None = None) -> None:
        model = load_ediffiqa(weights, variant)
        self.name = f"ediffiqa_{model.variant.lower()}"
        if backend != "torch" and onnx_path is None:
            onnx_path = str(exported_onnx(model, weights))
        self.backend = create_backend(backend, module=model, onnx_path=onnx_path, device=device, half=half,
                                      max_batch=batch_size, precision=precision)

    def score(self, aligned: np.ndarray) -> np.ndarray:
        """Quality of ``(N, 112, 112, 3)`` BGR crops, ``(N,)`` float32, higher = better."""
        if not len(aligned):
            return np.zeros(0, np.float32)
        return self.backend.run(to_input(aligned))[0].reshape(-1).astype(np.float32)
