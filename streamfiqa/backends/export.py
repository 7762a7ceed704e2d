"""ONNX export of the library's torch models (the input of the ONNX Runtime and TensorRT backends)."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from streamfiqa.backends.base import written_whole


def export_onnx(model: torch.nn.Module, out: str | Path, opset: int = 17, output_names: tuple = ("quality",),
                input_shape: tuple = (3, 112, 112)) -> Path:
    """Write ``model`` (``(N, *input_shape)`` → ``output_names``) to ONNX with a dynamic batch axis. The file appears
    whole or not at all (written beside, then renamed): processes that share a cache never read half a model."""
    out = Path(out)
    model = model.eval().cpu().float()
    dummy = torch.zeros(2, *input_shape)
    axes = {"input": {0: "batch"}, **{n: {0: "batch"} for n in output_names}}
    with warnings.catch_warnings(), written_whole(out) as part:
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter handles dynamic axes
        torch.onnx.export(model, (dummy,), str(part), input_names=["input"], output_names=list(output_names),
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
    return out
