"""Quality students: an FR backbone + an MLP head (the eDifFIQA recipe), trained by ``distil``.

A student returns both a quality score and the backbone's unit-norm embedding, so the tracker's
appearance model gets its embedding from the fast tier at no extra pass. Its preprocessing travels
with it: :meth:`Student.prepare` turns aligned 112×112 BGR crops into its input, RGB in ``[-1, 1]`` at
its own ``input_size`` (``cv2.INTER_AREA`` when smaller: the same resampling in training and use).

=============  ==============================================  ==========  =================================
arch           backbone                                        input       for
=============  ==============================================  ==========  =================================
``mfn80``      ArcFace MobileFaceNet (128-D), 5×5 global conv  80 px       fast tier on CPU (≈ 480 faces/s)
``mfn112``     ArcFace MobileFaceNet (128-D)                   112 px      heavy tier on CPU
``iresnet18``  IResNet-18 in eDifFIQA(S) layout (512-D)        112 px      GPU fast tier; ``ediffiqa`` loads it
=============  ==============================================  ==========  =================================

Checkpoints are ``{"state_dict": {...}, "meta": {...}}`` (loadable with ``weights_only=True``); ``meta``
names the arch, the teacher, the labels and the training data (the model card travels with the weights).
The embedded defaults (``fiqa_fast``, ``fiqa_heavy``) live in ``streamfiqa/weights/`` (see its MODEL_CARD.md).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamfiqa.align import jitter_alignment
from streamfiqa.backends import cache_dir as default_cache_dir
from streamfiqa.backends import create_backend
from streamfiqa.backends.export import export_onnx
from streamfiqa.models.common import InputConvention, batches, load_checkpoint, load_strict, pick_device
from streamfiqa.models.ediffiqa import MLP
from streamfiqa.models.int8 import check_source, int8_path, require
from streamfiqa.models.iresnet import iresnet
from streamfiqa.models.mobilefacenet import ArcMobileFaceNet

log = logging.getLogger(__name__)
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
#: arch → (input size, embedding size)
ARCHS = {"mfn80": (80, 128), "mfn112": (112, 128), "iresnet18": (112, 512)}
#: Embedded students shipped in ``streamfiqa/weights/``: the fast tier's, and the heavy tier's two (at 112 px and at
#: 80 px, of the same labels).
EMBEDDED = {"fiqa_fast": "fiqa_fast.pt", "fiqa_heavy": "fiqa_heavy.pt", "fiqa_heavy_80": "fiqa_heavy_80.pt"}


class Student(nn.Module):
    """Backbone + MLP head. ``forward(x) → (quality (N,), embedding (N, D))``."""

    def __init__(self, arch: str = "mfn80") -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"student: expected arch in {', '.join(ARCHS)}, found {arch!r}")

        self.arch = arch
        self.input_size, dim = ARCHS[arch]
        if arch.startswith("mfn"):
            self.base_model = ArcMobileFaceNet(gd_kernel=-(-self.input_size // 16))
        else:
            self.base_model = iresnet(18)
        self.mlp = MLP(dim, 1024, 1)

    def prepare(self, aligned: np.ndarray) -> torch.Tensor:
        """``(N, 112, 112, 3)`` BGR uint8 crops → ``(N, 3, S, S)`` RGB in ``[-1, 1]`` at :attr:`input_size`."""
        return prepare(aligned, self.input_size)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Un-normalised backbone output of a prepared batch."""
        if self.arch.startswith("mfn"):
            return self.base_model.unnormalised(x)
        return self.base_model(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return self.mlp(f).squeeze(1), F.normalize(f, dim=1)


def prepare(aligned: np.ndarray, size: int) -> torch.Tensor:
    """Aligned BGR crops → RGB ``[-1, 1]`` tensor at ``size`` (area resampling when smaller than 112)."""
    import cv2

    aligned = np.asarray(aligned)
    if not len(aligned):
        return torch.zeros((0, 3, size, size))
    images = [cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA) if size != a.shape[0] else a for a in aligned]
    # one OpenCV call swaps to RGB, scales and lays out NCHW (the torch cast/divide/permute took ~3x longer)
    return torch.from_numpy(cv2.dnn.blobFromImages(images, 1 / 127.5, None, (127.5, 127.5, 127.5), swapRB=True,
                                                   crop=False))


def init_from_teacher(student: Student, teacher_state: dict) -> int:
    """Copy every teacher tensor whose key and shape match the student's backbone (the global depthwise
    kernel of a smaller input is the teacher's, area-resampled). Returns how many tensors were copied."""
    own = student.base_model.state_dict()
    copied = 0
    for k, v in teacher_state.items():
        if k not in own:
            continue
        if own[k].shape == v.shape:
            own[k] = v.clone()
        elif k == "gdconv.depthwise.weight":
            size = own[k].shape[-1]
            own[k] = F.adaptive_avg_pool2d(v.float(), size) * (v.shape[-1] / size) ** 2
        else:
            continue
        copied += 1
    student.base_model.load_state_dict(own)
    return copied


def save_student(model: Student, path: str | Path, meta: dict) -> Path:
    """Write a checkpoint ``{"state_dict", "meta"}`` (meta: JSON-able)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "meta": json.loads(json.dumps({**meta, "arch": model.arch}))}, path)
    return path


def load_student(path: str | Path) -> tuple[Student, dict]:
    """A ``distil`` checkpoint, loaded strictly; returns the model (eval mode) and its meta."""
    data = load_checkpoint(path)
    if "state_dict" not in data or "meta" not in data:
        raise ValueError(f"{path}: expected a distil checkpoint with keys state_dict and meta, found {list(data)[:4]}")
    meta = data["meta"]
    model = Student(meta.get("arch", "mfn80"))
    load_strict(model, data["state_dict"], f"student {path}")
    return model.eval(), meta


def embedded_path(name: str) -> Path:
    """Path of an embedded student.

    Raises:
        FileNotFoundError: the package was installed without its weights.
    """
    if name not in EMBEDDED:
        raise ValueError(f"unknown embedded student {name!r}; valid: {', '.join(EMBEDDED)}")
    path = WEIGHTS_DIR / EMBEDDED[name]
    if not path.is_file():
        raise FileNotFoundError(f"{name}: expected the embedded weights at {path}, found none")
    return path


class _QualityOnly(nn.Module):
    def __init__(self, student: Student) -> None:
        super().__init__()
        self.student = student

    def forward(self, x: torch.Tensor):
        return self.student(x)


class StudentScorer:
    """A student as a scorer (and as the tracker's embedder).

    Args:
        weights: ``distil`` checkpoint; ``None`` = the embedded one named ``name``.
        name: scorer name in events (``fiqa_fast``, ``fiqa_heavy``, or the checkpoint's ``meta.name``).
        backend: ``onnxruntime`` (CPU default: ≈ 5× torch for these depthwise nets), ``torch``,
            ``tensorrt`` or ``auto``. ONNX exports go to the engine cache once per checkpoint.
        device: torch device (torch backend).
        batch_size: largest batch per run.
        flip: also score the mirrored crop and average (test-time augmentation).
        jitter: average over this many extra seeded small similarity jitters of the crop (±2 px shift,
            ±3 % scale, ±3° rotation: what different detectors' landmarks do), opt-in robust score.
        threads: ONNX Runtime intra-op threads (0 = library default).
        precision: the backend's inference precision (``None`` = its default; ``bf16`` on ``openvino``: about
            half the time where the CPU has bfloat16 units, scores within ~0.01; ``fp16`` on ``tensorrt``), or
            ``int8``: the quantised model beside the checkpoint (``<stem>.int8.onnx``, written by
            ``streamfiqa quantize``; ONNX Runtime; see :mod:`streamfiqa.train.quantize`).
    """

    def __init__(self, weights: str | None = None, name: str = "fiqa_fast", backend: str = "onnxruntime",
                 device: str = "auto", batch_size: int = 256, flip: bool = False, jitter: int = 0,
                 threads: int = 0, precision: str | None = None) -> None:
        path = Path(weights) if weights else embedded_path(name)
        self.model, self.meta = load_student(path)
        self.name = name if not weights else str(self.meta.get("name", name))
        #: utility labels make the score a predicted cosine (quality.scorers.UTILITY); other labels, their own scale
        self.scale = str(self.meta.get("labels", "utility"))
        #: as an FR model: RGB in [-1, 1] at the student's input size (area-resampled from the 112 crop)
        self.convention = InputConvention(self.model.input_size)
        self.flip, self.jitter = bool(flip), int(jitter)
        onnx_path, int8 = None, precision == "int8"
        if int8:  # the quantised model beside the checkpoint (streamfiqa quantize)
            if backend not in ("onnxruntime", "auto"):
                raise ValueError(f"{self.name}: precision int8 runs on backend onnxruntime, found backend {backend!r}")
            backend, precision, onnx_path = "onnxruntime", None, str(int8_path(path))
            require(onnx_path, path)
        elif backend != "torch":
            onnx_path = str(self._onnx(path))
        size = self.model.input_size
        self.backend = create_backend(backend, module=_QualityOnly(self.model), onnx_path=onnx_path, device=device,
                                      max_batch=batch_size, threads=threads, input_shape=(3, size, size),
                                      precision=precision)
        if int8:  # made from these weights? (the session holds its metadata)
            check_source(onnx_path, path, self.backend.session.get_modelmeta().custom_metadata_map)

    def _onnx(self, path: Path) -> Path:
        import hashlib

        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        out = default_cache_dir() / f"student_{self.model.arch}-{digest}.onnx"
        if not out.is_file():
            log.info("exporting %s to %s", path, out)
            size = self.model.input_size
            export_onnx(_QualityOnly(self.model), out, output_names=("quality", "embedding"),
                        input_shape=(3, size, size))
        return out

    def _run(self, aligned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q, e = self.backend.run(self.model.prepare(aligned))[:2]
        # the head regresses the standardised label: back to the label's own units (FR-utility: a cosine)
        q = q.reshape(-1) * self.meta.get("label_std", 1.0) + self.meta.get("label_mean", 0.0)
        return q.astype(np.float32), e.astype(np.float32)

    def views(self, aligned: np.ndarray) -> list[np.ndarray]:
        """The crops scored: the crop, its mirror (``flip``) and ``jitter`` seeded jitters."""
        out = [aligned]
        if self.flip:
            out.append(np.ascontiguousarray(aligned[:, :, ::-1]))
        if self.jitter:
            out += [jitter_alignment(aligned, seed=k) for k in range(self.jitter)]
        return out

    def score_and_embed(self, aligned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Quality ``(N,)`` (mean over :meth:`views`) and unit-norm embeddings ``(N, D)`` of the crops."""
        if not len(aligned):
            return np.zeros(0, np.float32), np.zeros((0, ARCHS[self.model.arch][1]), np.float32)
        views = self.views(aligned)
        q, e = self._run(np.concatenate(views) if len(views) > 1 else aligned)
        n = len(aligned)
        return q.reshape(len(views), n).mean(0), e[:n]

    def score(self, aligned: np.ndarray) -> np.ndarray:
        """Quality of ``(N, 112, 112, 3)`` BGR crops, ``(N,)`` float32, higher = better."""
        return self.score_and_embed(aligned)[0]

    def embed(self, aligned: np.ndarray) -> np.ndarray:
        """Unit-norm backbone embeddings (the FR-model interface)."""
        return self.score_and_embed(aligned)[1]


class StudentEnsemble:
    """Several students scoring the same crops; the score is their mean (all regress the same label, in the
    same units). The embedding is the first member's.

    Args:
        members: scorers with ``score_and_embed``.
        name: scorer name in events.
    """

    def __init__(self, members: list, name: str) -> None:
        if not members:
            raise ValueError("student ensemble: expected at least one member, found none")
        self.members, self.name = members, name
        scales = {getattr(m, "scale", None) for m in members}
        self.scale = scales.pop() if len(scales) == 1 else None  # a mean of one label's predictions keeps its units

    def score_and_embed(self, aligned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outs = [m.score_and_embed(aligned) for m in self.members]
        return np.mean([q for q, _ in outs], axis=0).astype(np.float32), outs[0][1]

    def score(self, aligned: np.ndarray) -> np.ndarray:
        """Mean of the members' scores, ``(N,)`` float32."""
        return self.score_and_embed(aligned)[0]

    def embed(self, aligned: np.ndarray) -> np.ndarray:
        return self.score_and_embed(aligned)[1]


def student_torch(weights: str | None, name: str = "fiqa_fast", device: str = "auto") -> Student:
    """The student module itself (for FaceQAN / GraFIQs on its backbone, or fine-tuning)."""
    model, _ = load_student(Path(weights) if weights else embedded_path(name))
    return model.to(pick_device(device))


__all__ = ["ARCHS", "EMBEDDED", "Student", "StudentScorer", "embedded_path", "init_from_teacher", "load_student",
           "save_student", "batches"]
