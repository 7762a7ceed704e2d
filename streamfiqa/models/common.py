"""Shared helpers of the torch models: preprocessing, checkpoint loading, devices."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from streamfiqa.backends.base import batches, pick_device  # noqa: F401 - re-exported for the models

#: Face crops the scorers take: 112×112 BGR uint8, aligned to the ArcFace template.
ALIGNED_SHAPE = (112, 112, 3)


@dataclass(frozen=True)
class InputConvention:
    """How a network wants its pixels (it travels with the model, as timm's configs do).

    ``x = (pixel / 255 − mean) / std`` per channel, in ``channels`` order, at ``size × size``.
    Torch FR modules in this library all take the canonical ``[-1, 1]`` RGB tensor and convert to
    their own convention inside; ONNX models are fed by :meth:`apply`.
    """

    size: int = 112
    channels: str = "RGB"
    mean: tuple = (0.5, 0.5, 0.5)
    std: tuple = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        if self.channels not in ("RGB", "BGR"):
            raise ValueError(f"InputConvention.channels: expected RGB or BGR, found {self.channels!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"InputConvention: expected 3 means and 3 positive stds, found {self.mean}, {self.std}")

    def apply(self, aligned: np.ndarray) -> np.ndarray:
        """``(N, 112, 112, 3)`` BGR uint8 crops → ``(N, 3, size, size)`` float32 network input."""
        arr = check_aligned(aligned)
        if self.size != arr.shape[1]:
            arr = np.stack([cv2.resize(a, (self.size, self.size), interpolation=cv2.INTER_LINEAR) for a in arr])
        if self.channels == "RGB":
            arr = arr[..., ::-1]
        x = (arr.astype(np.float32) / 255.0 - np.float32(self.mean)) / np.float32(self.std)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


#: The convention of ArcFace-family networks (insightface, eDifFIQA): RGB, ``(x/255 − 0.5)/0.5``.
ARCFACE = InputConvention()


def check_aligned(aligned: np.ndarray) -> np.ndarray:
    """Validate ``(N, 112, 112, 3)`` uint8 crops; returns them as an array.

    Raises:
        ValueError: on any other shape or dtype.
    """
    arr = np.asarray(aligned)
    if arr.ndim != 4 or arr.shape[1:] != ALIGNED_SHAPE or arr.dtype != np.uint8:
        raise ValueError(f"expected aligned crops of shape (N, 112, 112, 3) uint8, found {arr.shape} {arr.dtype}")
    return arr


def to_input(aligned: np.ndarray, device: str | torch.device = "cpu", dtype=torch.float32) -> torch.Tensor:
    """BGR uint8 crops ``(N, 112, 112, 3)`` → RGB ``(N, 3, 112, 112)`` in ``[-1, 1]`` (``(x/255 − 0.5)/0.5``)."""
    arr = check_aligned(aligned)
    x = torch.from_numpy(np.ascontiguousarray(arr[..., ::-1])).to(device)
    return x.permute(0, 3, 1, 2).to(dtype).div_(127.5).sub_(1.0)


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint with ``weights_only=True`` (never unpickles code) onto the CPU.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a tensor dict torch can load safely.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected a checkpoint file at {path}, found none")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: expected a torch checkpoint, found an empty file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types here
        # torch's message may advise weights_only=False: never for files from elsewhere, so it is not repeated
        kind = "a pickle with code or objects a safe load refuses" if "weights_only" in str(exc) else \
            f"not a torch checkpoint ({type(exc).__name__})"
        raise ValueError(f"{path}: expected a torch checkpoint of tensors (loaded with weights_only=True), "
                         f"found {kind}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict (state_dict or trainer checkpoint), found {type(data).__name__}")
    return data


def load_strict(module: torch.nn.Module, state: dict, what: str) -> None:
    """``load_state_dict(strict=True)`` with an error that lists the first differing keys and shapes."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: expected {tuple(own[k].shape)}, found {tuple(state[k].shape)}"
              for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        raise ValueError(f"{what}: checkpoint does not match the expected layout; "
                         f"missing {len(missing)} {missing[:4]}, unexpected {len(unexpected)} {unexpected[:4]}, "
                         f"shape mismatches {shapes[:3]}")
    module.load_state_dict(state, strict=True)
