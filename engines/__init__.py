"""ONNX export and TensorRT engine building (``python -m engines.export``, ``python -m engines.build``)."""
