"""The backend interface, the registry and ``auto`` selection."""
from __future__ import annotations

import abc
import importlib.util
import logging
from dataclasses import dataclass

import numpy as np

from streamfiqa.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputSpec:
    """Name, per-sample shape and dtype of a backend's input (the batch axis is dynamic)."""

    name: str
    shape: tuple
    dtype: str = "float32"


class Backend(abc.ABC):
    """Runs one network. Subclasses set :attr:`input_spec` and implement :meth:`run`."""

    kind: str = ""
    input_spec: InputSpec
    max_batch: int = 1 << 30

    @abc.abstractmethod
    def run(self, batch) -> list[np.ndarray]:
        """Outputs for ``batch`` (``(N, *input_spec.shape)``); split into ``max_batch`` chunks as needed."""

    def close(self) -> None:
        """Release the device memory and sessions the backend holds."""

    def check(self, batch) -> None:
        """Raise ValueError unless ``batch`` matches :attr:`input_spec` (dimensions that are not integers —
        an ONNX model's dynamic axes — match any size)."""
        shape, want = tuple(batch.shape[1:]), tuple(self.input_spec.shape)
        if len(shape) != len(want) or any(isinstance(w, int) and w != s for w, s in zip(want, shape)):
            raise ValueError(f"{self.kind} backend: expected input (N, {', '.join(map(str, want))}), "
                             f"found {tuple(batch.shape)}")

    @staticmethod
    def as_float32(batch) -> np.ndarray:
        """A torch tensor or array batch as a contiguous float32 numpy array (what ONNX runtimes take)."""
        x = batch.detach().cpu().numpy() if hasattr(batch, "detach") else batch
        return np.ascontiguousarray(x, np.float32)

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


BACKENDS: Registry[Backend] = Registry("backend")


def available(kind: str) -> bool:
    """Whether ``kind`` can run here (TensorRT needs the package and a CUDA device)."""
    if kind == "tensorrt":
        if importlib.util.find_spec("tensorrt") is None:
            return False
        import torch

        return torch.cuda.is_available()
    if kind == "onnxruntime":
        return importlib.util.find_spec("onnxruntime") is not None
    if kind == "openvino":
        return importlib.util.find_spec("openvino") is not None
    return kind == "torch"


def create_backend(kind: str = "auto", **kwargs) -> Backend:
    """Build a backend by name: ``tensorrt``, ``openvino``, ``onnxruntime``, ``torch`` or ``auto``.

    ``auto`` picks TensorRT when the package and a GPU exist, else ONNX Runtime when an ONNX model is
    given, else torch. Arguments a backend does not take are ignored by that backend's factory; an argument
    given as ``None`` means that backend's own default (``precision=None``: fp16 on TensorRT, f32 elsewhere).
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    import streamfiqa.backends.onnxruntime_backend  # noqa: F401 - registration
    import streamfiqa.backends.openvino_backend  # noqa: F401
    import streamfiqa.backends.tensorrt_backend  # noqa: F401
    import streamfiqa.backends.torch_backend  # noqa: F401

    if kind == "auto":
        if available("tensorrt") and kwargs.get("onnx_path"):
            kind = "tensorrt"
        elif available("onnxruntime") and kwargs.get("onnx_path"):
            kind = "onnxruntime"
        else:
            kind = "torch"
        log.info("backend auto → %s", kind)
    return BACKENDS.create(kind, **kwargs)


def batches(n: int, size: int):
    """Slices covering ``range(n)`` in chunks of ``size``."""
    for i in range(0, n, max(size, 1)):
        yield slice(i, min(i + size, n))
