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


def check_source(onnx_path: str | Path, weights: str | Path) -> None:
    """Make sure an INT8 model was quantised from ``weights``.

    Raises:
        FileNotFoundError: there is no INT8 model at ``onnx_path``.
        ValueError: it was made from other weights (or by something else).
    """
    import onnx

    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"precision int8: expected the quantised model at {onnx_path}, found none; "
                                f"make it with: streamfiqa quantize --weights {weights}")
    meta = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
    want = sha256(weights)
    if meta.get(SOURCE_KEY) != want:
        raise ValueError(f"precision int8: expected {onnx_path} to be quantised from {weights} (sha256 {want[:12]}), "
                         f"found source {str(meta.get(SOURCE_KEY))[:12]}; re-run: streamfiqa quantize --weights "
                         f"{weights}")
