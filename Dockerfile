# GPU image: NVIDIA's PyTorch container brings CUDA, cuDNN, torch and TensorRT's Python API.
# Not built in the development workplace (no Docker engine there); kept minimal on purpose.
FROM nvcr.io/nvidia/pytorch:25.01-py3

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/streamfiqa

# Everything but the CPU torch pin and CPU onnxruntime; the image's CUDA torch stays.
COPY requirements.txt .
RUN grep -v -E '^(torch|onnxruntime|opencv-python)' requirements.txt > /tmp/req.txt \
 && pip install -r /tmp/req.txt onnxruntime-gpu opencv-python-headless

COPY streamfiqa ./streamfiqa
COPY pipelines ./pipelines
COPY engines ./engines
COPY bench ./bench
COPY configs ./configs
COPY run_stream.py README.md ./

# Publishers bind to 127.0.0.1 by default; inside a container pass --publish tcp://0.0.0.0:5556
# (and -p 5556:5556) only when subscribers outside the container must reach it.
EXPOSE 5556
ENTRYPOINT ["python", "run_stream.py"]
CMD ["--help"]
