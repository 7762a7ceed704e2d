"""Where a student's INT8 model lives and how it is checked against its float checkpoint (``streamfiqa quantize``,
:mod:`streamfiqa.train.quantize`, writes it; ``precision: int8`` loads it)."""
from __future__ import annotations

import hashlib
from pathlib import Path

#: ONNX metadata keys written into a quantised model.
SOURCE_KEY = "streamfiqa.source_sha256"
RECIPE_KEY = "streamfiqa.recipe"
RECIPE = "qdq-int8 per-channel weights; Conv/Add/Clip; first conv and last three float; percentile 99.99"
CALIBRATION_KEY = "streamfiqa.calibration"


def int8_path(weights: str | Path) -> Path:
    """Where the INT8 model of a student checkpoint lives: beside it, ``<stem>.int8.onnx``."""
    weights = Path(weights)
    return weights.with_name(weights.stem + ".int8.onnx")


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def require(onnx_path: str | Path, weights: str | Path) -> None:
    """Raise :class:`FileNotFoundError` naming the command that makes it when there is no INT8 model at
    ``onnx_path`` for the checkpoint ``weights``."""
    if not Path(onnx_path).is_file():
        raise FileNotFoundError(f"precision int8: expected the quantised model at {onnx_path}, found none; "
                                f"make it with: streamfiqa quantize --weights {weights}")


def check_source(onnx_path: str | Path, weights: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Make sure an INT8 model was quantised from ``weights``.

    Args:
        onnx_path: the INT8 model.
        weights: the float checkpoint it must come from.
        metadata: the model's metadata when it is already loaded (an ONNX Runtime session's
            ``get_modelmeta().custom_metadata_map``); else it is read from ``onnx_path``.

    Raises:
        FileNotFoundError: there is no INT8 model at ``onnx_path``.
        ValueError: it was made from other weights (or by something else).
    """
    require(onnx_path, weights)
    meta = metadata
    if meta is None:  # onnx costs 0.6 s to import: a loaded session's metadata is passed in instead
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
    want = sha256(weights)
    if meta.get(SOURCE_KEY) != want:
        raise ValueError(f"precision int8: expected {onnx_path} to be quantised from {weights} (sha256 {want[:12]}), "
                         f"found source {str(meta.get(SOURCE_KEY))[:12]}; re-run: streamfiqa quantize --weights "
                         f"{weights}")
