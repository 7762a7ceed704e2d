"""The backend interface, its registry, and the helpers every backend shares (batching, device choice).

The backends register themselves when :func:`streamfiqa.backends.create_backend` imports them; this module imports
none of them."""
from __future__ import annotations

import abc
import importlib.util
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamfiqa.registry import Registry



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


def batches(n: int, size: int):
    """Slices covering ``range(n)`` in chunks of ``size``."""
    for i in range(0, n, max(size, 1)):
        yield slice(i, min(i + size, n))


def cache_dir() -> Path:
    """Where exported ONNX models and TensorRT engines are kept: ``$STREAMFIQA_CACHE``, else the user's cache directory
    (``$XDG_CACHE_HOME/streamfiqa``, ``~/.cache/streamfiqa``): never inside the installed package."""
    if os.environ.get("STREAMFIQA_CACHE"):
        return Path(os.environ["STREAMFIQA_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "streamfiqa"


@contextmanager
def written_whole(path: str | Path) -> Iterator[Path]:
    """A file to write ``path``'s content to, renamed onto ``path`` when the block ends and removed if it raises.

    Processes sharing the model cache (a fleet's workers, two runs starting at once) never read half a file, and two
    processes making the same file at once never write into one: each writes its own (named by process and thread,
    with ``path``'s suffix, which some writers go by), and the last rename wins with a whole file.

    Example:
        >>> with written_whole(cache_dir() / "model.onnx") as part:  # doctest: +SKIP
        ...     export(model, part)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.stem}.{os.getpid()}-{threading.get_ident()}.part{path.suffix}")
    try:
        yield part
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def pick_device(device: str = "auto"):
    """``auto`` → CUDA when available, else CPU (a ``torch.device``)."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
