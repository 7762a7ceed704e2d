"""OpenVINO on the CPU: the same ONNX models, compiled per input shape. In f32 it runs the embedded RetinaFace
and students at ONNX Runtime's speed on the 2-core AVX-512 development machine; bf16 about halves their time
where the CPU has bfloat16 units (README, "Engines and speed")."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from streamfiqa.backends.base import BACKENDS, Backend, InputSpec, batches


@BACKENDS.register("openvino")
class OpenVinoBackend(Backend):
    """An ONNX model compiled by OpenVINO for the CPU.

    Each distinct per-sample shape (a detector's letterboxed frame size) is compiled once, with a dynamic batch
    axis (within 10 % of a static batch here); the ``max_shapes`` most recent stay compiled.

    Args:
        onnx_path: the model.
        threads: inference threads (0 = OpenVINO's choice: every core).
        max_batch: largest batch per inference.
        max_shapes: compiled shapes kept.
        precision: ``f32`` (default: the same scores as ONNX Runtime to 1e-3, as the tests check) or ``bf16`` (faster where
            the CPU has bfloat16 units; scores move by up to ~0.01).
    """

    kind = "openvino"

    def __init__(self, onnx_path: str | None = None, threads: int = 0, max_batch: int = 256, max_shapes: int = 8,
                 precision: str = "f32", **_) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise ValueError("openvino backend: expected the openvino package (pip install openvino), "
                             "found none") from exc
        if not onnx_path:
            raise ValueError("openvino backend: expected onnx_path=<model.onnx>, found none")
        precision = {"fp32": "f32"}.get(precision, precision)
        if precision not in ("f32", "bf16"):
            raise ValueError(f"openvino backend: expected precision f32 (fp32) or bf16, found {precision!r}")
        self.core = ov.Core()
        self.model = self.core.read_model(str(onnx_path))
        inp = self.model.inputs[0]
        self._name = inp.get_any_name()
        dims = inp.get_partial_shape()
        self.input_spec = InputSpec(self._name, tuple(d.get_length() if d.is_static else None for d in dims)[1:])
        # No pinning: OpenVINO pins its threads to cores by default, and the runner's stages (each with its own
        # compiled model) would then share one core while the other idles.
        self.config = {"PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False, "INFERENCE_PRECISION_HINT": precision}
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = int(threads)
        self.max_batch, self.max_shapes = max_batch, max_shapes
        self._compiled: OrderedDict = OrderedDict()

    def _request(self, shape: tuple):
        import openvino as ov

        shape = tuple(shape[1:])
        if shape in self._compiled:
            self._compiled.move_to_end(shape)
            return self._compiled[shape]
        model = self.model.clone()
        model.reshape({self._name: ov.PartialShape([-1, *shape])})
        request = self.core.compile_model(model, "CPU", self.config).create_infer_request()
        self._compiled[shape] = request
        while len(self._compiled) > self.max_shapes:
            self._compiled.popitem(last=False)
        return request

    def run(self, batch) -> list[np.ndarray]:
        self.check(batch)
        x = self.as_float32(batch)
        outs = []
        for sl in batches(len(x), self.max_batch):
            part = x[sl]
            request = self._request(tuple(part.shape))
            result = request.infer({0: part})
            outs.append([np.array(result[o]) for o in request.model_outputs])
        return [np.concatenate(parts) for parts in zip(*outs)] if outs else []

    def close(self) -> None:
        self._compiled.clear()
