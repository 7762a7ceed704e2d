"""TensorRT backend: build an engine from ONNX (FP16/FP32, dynamic-batch profile, timing cache),
cache it on disk keyed by GPU, TensorRT version, model hash, precision and profile, and execute
it on torch CUDA buffers.

Written against TensorRT's documented Python API (10.x: ``build_serialized_network``,
``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``). ``tensorrt`` is imported
only when this backend is built, so the package stays optional.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from streamfiqa.backends.base import BACKENDS, Backend, InputSpec, batches, written_whole
from streamfiqa.backends.base import cache_dir as default_cache_dir

log = logging.getLogger(__name__)


def engine_key(onnx_path: str | Path, precision: str, profile: tuple, gpu: str, trt_version: str) -> str:
    """Hex key of an engine: changes with the model bytes, precision, batch profile, GPU and TensorRT."""
    h = hashlib.sha256(Path(onnx_path).read_bytes())
    h.update(json.dumps([precision, list(profile), gpu, trt_version]).encode())
    return h.hexdigest()[:20]


def engine_path(cache_dir: str | Path, onnx_path: str | Path, precision: str, profile: tuple, gpu: str,
                trt_version: str) -> Path:
    """Where the engine for these settings lives in ``cache_dir``."""
    key = engine_key(onnx_path, precision, profile, gpu, trt_version)
    return Path(cache_dir) / f"{Path(onnx_path).stem}-{precision}-{key}.engine"


def build_engine(onnx_path: str | Path, precision: str = "fp16", profile: tuple = (1, 64, 256),
                 workspace_gb: float = 4.0, timing_cache: str | Path | None = None) -> bytes:
    """Build a serialized engine with one dynamic-batch optimisation profile ``(min, opt, max)``.

    Raises:
        RuntimeError: the ONNX parser or the builder failed (parser errors are listed).
    """
    import tensorrt as trt

    if precision not in ("fp16", "fp32"):
        raise ValueError(f"TensorRT: expected precision fp16 or fp32, found {precision!r}")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0 if int(trt.__version__.split(".")[0]) >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    inp = network.get_input(0)
    sample = tuple(inp.shape[1:])
    if inp.shape[0] > 0:  # a fixed batch (e.g. SCRFD's 1×3×640×640): the profile is that batch
        profile = (inp.shape[0],) * 3
    opt = builder.create_optimization_profile()
    opt.set_shape(inp.name, (profile[0], *sample), (profile[1], *sample), (profile[2], *sample))
    config.add_optimization_profile(opt)
    cache_bytes = Path(timing_cache).read_bytes() if timing_cache and Path(timing_cache).is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    if timing_cache:
        with written_whole(timing_cache) as part:
            part.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(engine)


@BACKENDS.register("tensorrt")
class TensorRTBackend(Backend):
    """A TensorRT engine built from ``onnx_path`` (or loaded from the cache), run on torch CUDA tensors.

    Args:
        onnx_path: the ONNX model with a dynamic batch axis (``engines.export``).
        precision: ``fp16`` or ``fp32``.
        max_batch: the profile's max (opt = min(64, max), min = 1); larger inputs are split.
        cache_dir: engine cache folder (default: :func:`streamfiqa.backends.base.cache_dir`).
        device: CUDA device index.
    """

    kind = "tensorrt"

    def __init__(self, onnx_path: str | None = None, precision: str = "fp16", max_batch: int = 256,
                 cache_dir: str | Path | None = None, device: int = 0, **_) -> None:
        import tensorrt as trt
        import torch

        if not onnx_path:
            raise ValueError("tensorrt backend: expected onnx_path=<model.onnx>, found none")
        if not torch.cuda.is_available():
            raise RuntimeError("tensorrt backend: expected a CUDA device, found none")
        self.torch, self.trt = torch, trt
        self.device = torch.device("cuda", device)
        cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        profile = (1, min(64, max_batch), max_batch)
        path = engine_path(cache_dir, onnx_path, precision, profile, torch.cuda.get_device_name(self.device),
                           trt.__version__)
        if path.is_file():
            log.info("TensorRT engine from cache: %s", path)
            blob = path.read_bytes()
        else:
            log.info("building TensorRT engine (%s, batch %s) → %s", precision, profile, path)
            blob = build_engine(onnx_path, precision, profile, timing_cache=cache_dir / "timing.cache")
            with written_whole(path) as part:  # a fleet's workers share the cache: never half an engine
                part.write_bytes(blob)
        self.engine_file = path
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(blob)
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if n not in self.inputs]
        shape = tuple(self.engine.get_tensor_shape(self.inputs[0]))
        self.input_spec = InputSpec(self.inputs[0], shape[1:])
        self.max_batch = max_batch
        self._dtypes = {n: torch.from_numpy(np.zeros(1, trt.nptype(self.engine.get_tensor_dtype(n)))).dtype
                        for n in names}

    def run_torch(self, x):
        """Run on a CUDA tensor; returns CUDA tensors (no host copies)."""
        torch = self.torch
        x = x.to(self.device, self._dtypes[self.inputs[0]]).contiguous()
        self.context.set_input_shape(self.inputs[0], tuple(x.shape))
        self.context.set_tensor_address(self.inputs[0], x.data_ptr())
        outs = []
        for name in self.outputs:
            out = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=self._dtypes[name], device=self.device)
            self.context.set_tensor_address(name, out.data_ptr())
            outs.append(out)
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        return outs

    def run(self, batch) -> list[np.ndarray]:
        self.check(batch)
        torch = self.torch
        x = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(batch))
        parts = [self.run_torch(x[sl]) for sl in batches(len(x), self.max_batch)]
        torch.cuda.current_stream(self.device).synchronize()
        return [torch.cat(p).float().cpu().numpy() for p in zip(*parts)] if parts else []

    def close(self) -> None:
        self.context = self.engine = None
