"""ONNX export of the library's torch models (the input of the ONNX Runtime and TensorRT backends)."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch


def export_onnx(model: torch.nn.Module, out: str | Path, opset: int = 17, output_names: tuple = ("quality",),
                input_shape: tuple = (3, 112, 112)) -> Path:
    """Write ``model`` (``(N, *input_shape)`` → ``output_names``) to ONNX with a dynamic batch axis. The file appears
    whole or not at all (written beside, then renamed): processes that share a cache never read half a model."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    model = model.eval().cpu().float()
    dummy = torch.zeros(2, *input_shape)
    axes = {"input": {0: "batch"}, **{n: {0: "batch"} for n in output_names}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter handles dynamic axes
        torch.onnx.export(model, (dummy,), str(tmp), input_names=["input"], output_names=list(output_names),
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
    os.replace(tmp, out)
    return out
