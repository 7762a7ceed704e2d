"""INT8 students for the CPU: static post-training quantisation with ONNX Runtime, calibrated on real faces.

The fast tier scores every face of every frame, so on a CPU its network is most of a frame's work. Quantised to
INT8 (weights per channel, activations per tensor, QDQ format that ONNX Runtime runs with VNNI / AVX2 integer
kernels) the 80-px student runs 1.5–2.3× faster on the development machine and ranks faces as before:
Spearman 0.996 to the float scores, embedding cosine 0.995 on 600 held-out faces (README, "Engines and speed").

What keeps it that close (measured on the held-out half; every convolution quantised, min/max ranges: Spearman 0.87):

* the first convolution and the last three (the 1×1 expansion, the global depthwise convolution and the
  embedding projection) stay float: the quality head reads the embedding before its normalisation, so errors
  there move the score directly;
* activation ranges come from the 99.99th percentile of a histogram, not the min/max: a few outlier pixels of
  one photo otherwise stretch a range and coarsen every other face's steps;
* calibration faces are real aligned crops, clean and degraded (blur, noise, JPEG, …), as in the stream.

The quantised model is written as ONNX with its provenance in the metadata (the float checkpoint's SHA-256);
:func:`streamfiqa.models.int8.check_source` refuses one made from other weights.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from streamfiqa.backends.export import export_onnx
from streamfiqa.eval.facedata import celeba_ids_dir, load_crops, read_identities
from streamfiqa.models.int8 import CALIBRATION_KEY, RECIPE, RECIPE_KEY, SOURCE_KEY, int8_path, sha256
from streamfiqa.models.student import _QualityOnly, load_student

log = logging.getLogger(__name__)

def calibration_crops(folder: str | Path | None = None, photos: int = 400, split: str = "train",
                      seed: int = 0) -> np.ndarray:
    """Aligned crops to calibrate on: the first ``photos`` of an identity folder's ``split`` (default: the
    ``train`` half of ``../shared``'s celeba_ids, the half the students trained on), half of them clean and
    half under the ``mixed`` degradation protocol.

    Raises:
        FileNotFoundError: no folder given and ``../shared`` is absent.
    """

    ids = read_identities(folder or celeba_ids_dir()).split(split, seed)
    paths = ids.paths[:photos]
    half = len(paths) // 2
    return np.concatenate([load_crops(paths[:half], protocol="clean").aligned,
                           load_crops(paths[half:], protocol="mixed", seed=seed + 1).aligned])


def quantize_student(weights: str | Path, crops: np.ndarray, out: str | Path | None = None,
                     calibration: str = "") -> Path:
    """Quantise a student checkpoint to INT8.

    Args:
        weights: the float ``distil`` checkpoint (``.pt``).
        crops: ``(N, 112, 112, 3)`` aligned BGR uint8 calibration faces (a few hundred, clean and degraded).
        out: the INT8 ``.onnx`` to write (default: :func:`int8_path` of ``weights``).
        calibration: a line saying what ``crops`` are (kept in the model's metadata).

    Returns:
        The path written.
    """
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if crops.ndim != 4 or crops.shape[1:] != (112, 112, 3) or not len(crops):
        raise ValueError(f"quantize: expected (N, 112, 112, 3) aligned crops, found {crops.shape}")
    model, _ = load_student(weights)
    size = model.input_size
    out = Path(out) if out else int8_path(weights)
    with tempfile.TemporaryDirectory(prefix="streamfiqa-quant-") as tmp:
        float_onnx, prepared = Path(tmp) / "float.onnx", Path(tmp) / "prepared.onnx"
        export_onnx(_QualityOnly(model), float_onnx, output_names=("quality", "embedding"), input_shape=(3, size, size))
        quant_pre_process(str(float_onnx), str(prepared))
        graph = onnx.load(str(prepared)).graph
        name = graph.input[0].name
        convs = [n.name for n in graph.node if n.op_type == "Conv"]
        x = model.prepare(crops).numpy()

        class Reader(CalibrationDataReader):
            # one face per batch: the percentile calibrator stacks batches and needs them equal
            def __init__(self) -> None:
                self.it = iter(range(len(x)))

            def get_next(self):
                i = next(self.it, None)
                return None if i is None else {name: x[i:i + 1]}

        out.parent.mkdir(parents=True, exist_ok=True)
        quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv", "Add", "Clip"], nodes_to_exclude=[convs[0], *convs[-3:]],
                        calibrate_method=CalibrationMethod.Percentile, extra_options={"CalibPercentile": 99.99})
    q = onnx.load(str(out))
    for key, value in ((SOURCE_KEY, sha256(weights)), (RECIPE_KEY, RECIPE),
                       (CALIBRATION_KEY, calibration or f"{len(crops)} aligned faces")):
        prop = q.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(q, str(out))
    log.info("wrote %s (INT8 of %s, calibrated on %d faces)", out, weights, len(crops))
    return out
