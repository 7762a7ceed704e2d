# GPU image: NVIDIA's PyTorch container brings CUDA, cuDNN, torch and TensorRT's Python API.
# Not built in the development workplace (no Docker engine there); kept minimal on purpose.
FROM nvcr.io/nvidia/pytorch:25.01-py3

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/streamfiqa

# The package with its GPU extra; the image's CUDA torch satisfies "torch>=2.2", so pip keeps it.
COPY pyproject.toml README.md ./
COPY streamfiqa ./streamfiqa
COPY pipelines ./pipelines
RUN pip install ".[gpu,metrics,ray]" opencv-python-headless \
 && pip uninstall -y onnxruntime || true
COPY configs ./configs
COPY engines ./engines
# Exports and quantised copies made at a model's first use are kept here: FaceNet's for the second look (float, the
# default: 2–3 s of one core; INT8, configs/offline_realtime_cpu.yaml's: about 11 s) are made now, not by every
# container at its first track's end.
ENV STREAMFIQA_CACHE=/opt/streamfiqa/cache
RUN python -c "from streamfiqa.models.fr import create_fr; create_fr('facenet_onnx'); create_fr('facenet_int8')"

# Publishers bind to 127.0.0.1 by default. To reach subscribers outside the container, bind 0.0.0.0 WITH CURVE
# (face crops are biometric data; the filter refuses a non-loopback bind without it):
#   streamfiqa keys /keys  →  --publish tcp://0.0.0.0:5556 --set publish.curve_secret_key=/keys/streamfiqa.key_secret
EXPOSE 5556
ENTRYPOINT ["streamfiqa"]
CMD ["--help"]
