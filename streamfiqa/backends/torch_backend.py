"""PyTorch backend: CPU or CUDA, fp16 on CUDA, optional ``torch.compile``."""
from __future__ import annotations

import numpy as np

from streamfiqa.backends.base import BACKENDS, Backend, InputSpec, batches, pick_device


@BACKENDS.register("torch")
class TorchBackend(Backend):
    """Runs an ``nn.Module`` under ``inference_mode``.

    Args:
        module: the network (its forward returns a tensor or a tuple of tensors).
        input_shape: per-sample input shape.
        device: ``auto``, ``cpu``, ``cuda`` ….
        half: fp16 weights and inputs (CUDA only; ignored on CPU).
        compile: wrap with ``torch.compile``.
        max_batch: largest batch per forward.
    """

    kind = "torch"

    def __init__(self, module=None, input_shape=(3, 112, 112), device: str = "auto", half: bool = False,
                 compile: bool = False, max_batch: int = 256, **_) -> None:
        import torch

        if module is None:
            raise ValueError("torch backend: expected module=<nn.Module>, found none")
        self.torch = torch
        self.device = pick_device(device)
        self.dtype = torch.float16 if half and self.device.type == "cuda" else torch.float32
        self.module = module.eval().to(self.device, self.dtype)
        if compile:
            self.module = torch.compile(self.module)
        self.input_spec = InputSpec("input", tuple(input_shape))
        self.max_batch = max_batch

    def run(self, batch) -> list[np.ndarray]:
        self.check(batch)
        torch = self.torch
        x = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(batch))
        outs: list[list] = []
        with torch.inference_mode():
            for sl in batches(len(x), self.max_batch):
                y = self.module(x[sl].to(self.device, self.dtype, non_blocking=True))
                y = y if isinstance(y, (tuple, list)) else (y,)
                outs.append([t.float().cpu().numpy() for t in y])
        if not outs:
            return []
        return [np.concatenate(parts) for parts in zip(*outs)]
