"""Quality models: eDifFIQA, GraFIQs and DifFIQA against their official loops, the fast tier, detector variability."""
from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from bench.common import emit, timed


def bench_ediffiqa(results: list, crops: np.ndarray, folder: Path, device: str) -> None:
    from bench.official import ediffiqa_loop
    from engines.export import export_onnx
    from streamfiqa.backends import create_backend
    from streamfiqa.models.common import to_input
    from streamfiqa.models.ediffiqa import EDifFIQA

    torch.manual_seed(0)
    model = EDifFIQA("S").eval()
    n = len(crops)
    ediffiqa_loop(model, folder, device=device)  # warm-up
    t_off, _ = timed(ediffiqa_loop, model, folder, 128, device)
    ours = {}
    kinds = [("torch", {"device": device, "half": device == "cuda"})]
    with tempfile.TemporaryDirectory() as tmp:
        onnx = export_onnx(model, Path(tmp) / "s.onnx")
        kinds.append(("onnxruntime", {"onnx_path": str(onnx)}))
        if device == "cuda":
            kinds.append(("tensorrt", {"onnx_path": str(onnx), "precision": "fp16"}))
        for kind, kw in kinds:
            try:
                be = create_backend(kind, module=model, max_batch=256, **kw)
            except Exception as exc:  # noqa: BLE001 - report and go on
                emit(results, {"bench": "ediffiqa_s", "backend": kind, "error": str(exc)[:200]})
                continue
            be.run(to_input(crops[:256]))  # warm-up (and engine build)
            dt, _ = timed(lambda: be.run(to_input(crops)))
            ours[kind] = n / dt
            emit(results, {"bench": "ediffiqa_s", "backend": kind, "faces": n, "faces_per_s": round(n / dt, 1)})
    best = max(ours, key=ours.get)
    emit(results, {"bench": "ediffiqa_s", "official_faces_per_s": round(n / t_off, 1), "best_backend": best,
                   "ours_faces_per_s": round(ours[best], 1), "ratio_vs_official": round(ours[best] * t_off / n, 2)})


def bench_grafiqs(results: list, crops: np.ndarray, folder: Path, device: str, depth: int) -> None:
    from bench.official import grafiqs_loop
    from streamfiqa.models.grafiqs import GraFIQs
    from streamfiqa.models.iresnet import iresnet

    torch.manual_seed(0)
    net = iresnet(depth).eval()
    n = len(crops)
    t_off, _ = timed(grafiqs_loop, net, folder, device)
    g = GraFIQs(net, "image", device=device, batch_size=64 if device == "cuda" else 16)
    g.raw(crops[:4])
    t_ours, _ = timed(g.raw, crops)
    emit(results, {"bench": "grafiqs", "backbone": f"iresnet{depth}", "faces": n,
                   "official_faces_per_s": round(n / t_off, 2), "ours_faces_per_s": round(n / t_ours, 2),
                   "ratio_vs_official": round(t_off / t_ours, 2)})


def bench_diffiqa(results: list, crops: np.ndarray, folder: Path, device: str, dim: int, repeats: int) -> None:
    from bench.official import diffiqa_loop
    from streamfiqa.models.diffiqa import DifFIQA
    from streamfiqa.models.iresnet import iresnet
    from streamfiqa.models.unet import Unet

    torch.manual_seed(0)
    unet = Unet(dim=dim).eval()

    class FR:  # the paper's FR (CosFace IResNet-50), official layout, random weights
        net = iresnet(50).eval().to(device)

    ours = DifFIQA(unet, FR, t=5, repeats=repeats, batch_size=16 if device == "cuda" else 2, device=device)
    n = len(crops)
    t_off, _ = timed(diffiqa_loop, ours.diffusion, FR.net, folder, 5, repeats, 64, device)
    t_ours, _ = timed(ours.score, crops)
    emit(results, {"bench": "diffiqa", "unet_dim": dim, "repeats": repeats, "faces": n,
                   "official_faces_per_s": round(n / t_off, 3), "ours_faces_per_s": round(n / t_ours, 3),
                   "ratio_vs_official": round(t_off / t_ours, 2)})


def bench_fast_tier(results: list, crops: np.ndarray) -> None:
    """The embedded students' throughput, batched as the runner batches them (ONNX Runtime on CPU)."""
    from streamfiqa.quality.scorers import create_scorer

    for name, args in (("fiqa_fast", {}), ("fiqa_fast", {"precision": "int8"}), ("fiqa_heavy", {})):
        for batch in (6, 64, 256):  # 6: a crowd frame's faces, as the runner batches them every frame
            scorer = create_scorer(name, batch_size=batch, **args)
            scorer.score(crops[:batch])
            dt, _ = timed(lambda: [scorer.score(crops[i:i + batch]) for i in range(0, len(crops), batch)])
            emit(results, {"bench": "fast_tier", "scorer": name, **args, "batch": batch, "faces": len(crops),
                           "faces_per_s": round(len(crops) / dt, 1),
                           "network_runs_per_face": sum(len(m.views(crops[:1]))
                                                        for m in getattr(scorer, "members", [scorer]))})


def bench_variability(results: list, photos: int = 300) -> None:
    """How much the fast score moves when the same face is aligned from different detectors' landmarks
    (MTCNN, SCRFD-2.5G, YuNet, RetinaFace) or from RetinaFace's landmarks jittered by ±2 px, on held-out
    celeba_ids photos; and the same spread for the robust score (mean over 4 jittered alignments + mirror)."""
    from scipy.stats import spearmanr

    from streamfiqa.align import ARCFACE_TEMPLATE, similarity_transform
    from streamfiqa.detect import create_detector
    from streamfiqa.eval.facedata import celeba_ids_dir, read_identities, shared_dir
    from streamfiqa.quality.scorers import create_scorer

    models = shared_dir() / "models"
    if not celeba_ids_dir().is_dir():
        emit(results, {"bench": "variability", "skipped": "needs ../shared celeba_ids"})
        return
    dets = {"retinaface": create_detector("retinaface", score_threshold=0.5, min_face=10),
            "mtcnn": create_detector("mtcnn", score_threshold=0.5, min_face=10),
            "scrfd_2.5g": create_detector("scrfd", model_path=str(models / "scrfd" / "scrfd_2.5g_kps.onnx"),
                                          score_threshold=0.3, min_face=10),
            "yunet": create_detector("yunet", model_path=str(models / "yunet" / "face_detection_yunet_2023mar.onnx"),
                                     score_threshold=0.5, min_face=10)}
    paths = read_identities(celeba_ids_dir()).split("test").paths[:photos]
    rng = np.random.default_rng(0)
    crops: dict[str, list] = {k: [] for k in [*dets, "jitter_2px"]}
    for path in paths:
        img = cv2.imread(path)
        found = {}
        for name, det in dets.items():
            f = det.detect(img)
            if not len(f):
                break
            found[name] = f.landmarks[int(np.argmax(f.sizes))]
        if len(found) < len(dets):
            continue
        found["jitter_2px"] = found["retinaface"] + rng.uniform(-2, 2, (5, 2))
        for name, lm in found.items():
            crops[name].append(cv2.warpAffine(img, similarity_transform(lm, ARCFACE_TEMPLATE), (112, 112)))
    for label, scorer in (("fiqa_fast", create_scorer("fiqa_fast")),
                          ("fiqa_fast robust (jitter 4 + flip)", create_scorer("fiqa_fast", jitter=4, flip=True))):
        scores = {k: scorer.score(np.stack(v)) for k, v in crops.items()}
        ref = scores["retinaface"]
        spread = float(ref.std())
        per = {k: {"mean_abs_diff": round(float(np.abs(v - ref).mean()), 4),
                   "rel_to_score_std": round(float(np.abs(v - ref).mean() / spread), 3),
                   "spearman": round(float(spearmanr(v, ref).statistic), 3)} for k, v in scores.items() if k != "retinaface"}
        across = np.stack([v for k, v in scores.items() if k != "jitter_2px"]).std(0)
        emit(results, {"bench": "variability", "scorer": label, "faces": len(ref), "score_std_over_faces": round(spread, 4),
                       "mean_std_across_detectors": round(float(across.mean()), 4),
                       "vs_retinaface": per})
