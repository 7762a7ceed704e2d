"""One interface for running a network: TensorRT, ONNX Runtime, OpenVINO or PyTorch, chosen by name.

    backend = create_backend("auto", module=model, onnx_path=path)   # tensorrt > onnxruntime > torch
    quality = backend.run(batch)[0]

Every backend takes float32 NCHW numpy or torch input and returns a list of numpy outputs.
Heavy imports happen inside each backend.
"""
from __future__ import annotations

import logging

from streamfiqa.backends.base import (BACKENDS, Backend, InputSpec, available, batches, cache_dir, pick_device,
                                     written_whole)

log = logging.getLogger(__name__)


def create_backend(kind: str = "auto", **kwargs) -> Backend:
    """Build a backend by name: ``tensorrt``, ``openvino``, ``onnxruntime``, ``torch`` or ``auto``.

    ``auto`` picks TensorRT when the package and a GPU exist, else ONNX Runtime when an ONNX model is
    given, else torch. Arguments a backend does not take are ignored by that backend's factory; an argument
    given as ``None`` means that backend's own default (``precision=None``: fp16 on TensorRT, f32 elsewhere).
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    from streamfiqa.backends import onnxruntime_backend, openvino_backend, tensorrt_backend, torch_backend  # noqa: F401 - they register

    if kind == "auto":
        if available("tensorrt") and kwargs.get("onnx_path"):
            kind = "tensorrt"
        elif available("onnxruntime") and kwargs.get("onnx_path"):
            kind = "onnxruntime"
        else:
            kind = "torch"
        log.info("backend auto → %s", kind)
    return BACKENDS.create(kind, **kwargs)


__all__ = ["BACKENDS", "Backend", "InputSpec", "available", "batches", "cache_dir", "create_backend", "pick_device",
           "written_whole"]
