"""ONNX Runtime backend: CPU always; CUDA / TensorRT execution providers when present."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from streamfiqa.backends.base import BACKENDS, Backend, InputSpec, batches

log = logging.getLogger(__name__)


def session_options(threads: int = 0):
    """ONNX Runtime session options for a pipeline stage: ``threads`` intra-op threads (0 = one per core),
    and no busy-waiting between runs. By default idle ORT pool threads spin for a while after each run;
    beside the decode, detect and score threads of the runner that spinning takes the very cores the
    other stages need (the detect stage ran 2x slower beside a spinning scorer on 2 cores)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # errors only: some exports warn once per initializer kept as a graph input (SFace), or on every run that
    # their declared batch of 1 is not the batch they ran (buffalo_s)
    opts.log_severity_level = 3
    ort.set_default_logger_severity(3)
    return opts


@BACKENDS.register("onnxruntime")
class OrtBackend(Backend):
    """An ONNX model in an ONNX Runtime session.

    Args:
        onnx_path: the model.
        providers: execution providers in order of preference; those this build lacks are
            dropped (CPU always stays last).
        threads: intra-op threads (0 = library default).
        max_batch: largest batch per run.
        precision: ``None`` or ``fp32`` (the only one it runs).
    """

    kind = "onnxruntime"

    def __init__(self, onnx_path: str | None = None, providers: list | None = None, threads: int = 0,
                 max_batch: int = 256, precision: str | None = None, **_) -> None:
        import onnxruntime as ort

        if precision not in (None, "fp32", "f32"):
            raise ValueError(f"onnxruntime backend: expected precision fp32 (it runs no other on the CPU), found "
                             f"{precision!r}; bf16 runs on backend openvino, fp16 on tensorrt")
        if not onnx_path:
            raise ValueError("onnxruntime backend: expected onnx_path=<model.onnx>, found none")
        have = set(ort.get_available_providers())
        unknown = [p for p in providers or [] if p not in ort.get_all_providers()]
        if unknown:
            raise ValueError(f"onnxruntime: unknown execution provider(s) {', '.join(map(str, unknown))}; expected "
                             f"names ONNX Runtime knows, available here: {', '.join(sorted(have))}")
        wanted = providers or ["CUDAExecutionProvider", "CPUExecutionProvider"]
        chosen = [p for p in wanted if p in have and p != "CPUExecutionProvider"] + ["CPUExecutionProvider"]
        absent = [p for p in providers or [] if p not in have]
        if absent:  # asked for by name (a GPU provider on a CPU-only install, say): not silently replaced
            log.warning("onnxruntime: %s not available in this onnxruntime install (available: %s); %s runs on %s",
                        ", ".join(absent), ", ".join(sorted(have)), Path(str(onnx_path)).name, ", ".join(chosen))
        opts = session_options(threads)
        try:
            self.session = ort.InferenceSession(str(onnx_path), opts, providers=chosen)
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own types for a missing or broken model
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{onnx_path}: expected an ONNX model ONNX Runtime can load, found one it cannot "
                             f"({first[:200]})") from None
        inp = self.session.get_inputs()[0]
        self.input_spec = InputSpec(inp.name, tuple(inp.shape[1:]))
        self.providers = self.session.get_providers()
        self.max_batch = max_batch

    def run(self, batch) -> list[np.ndarray]:
        self.check(batch)
        x = self.as_float32(batch)
        outs = [self.session.run(None, {self.input_spec.name: x[sl]}) for sl in batches(len(x), self.max_batch)]
        return [np.concatenate(parts) for parts in zip(*outs)] if outs else []

    def close(self) -> None:
        self.session = None
