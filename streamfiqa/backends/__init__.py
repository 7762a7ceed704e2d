"""One interface for running a network: TensorRT, ONNX Runtime or PyTorch, chosen by name.

    backend = create_backend("auto", module=model, onnx_path=path)   # tensorrt > onnxruntime > torch
    quality = backend.run(batch)[0]

Every backend takes float32 NCHW numpy or torch input and returns a list of numpy outputs.
Heavy imports happen inside each backend.
"""
from streamfiqa.backends.base import BACKENDS, Backend, InputSpec, create_backend

__all__ = ["BACKENDS", "Backend", "InputSpec", "create_backend"]
