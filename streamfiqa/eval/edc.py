"""EDC (error-versus-discard characteristic) evaluation of quality scores on identity-labelled photos.

The standard protocol (as in the CR-FIQA / DifFIQA evaluations):

* pair quality = the lower quality of its two images;
* the decision threshold is fixed once, at FMR = 1e-3 over all impostor similarities;
* the lowest-quality genuine pairs are discarded first, pairs of equal quality together;
* y = FNMR of the genuine pairs kept, x = fraction of genuine pairs discarded;
* pAUC = area under that step curve from 0 to 0.2 and to 0.3 (not normalised).
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from streamfiqa.config import parse_spec
from streamfiqa.eval.facedata import load_crops, pairs, read_identities, shared_mobilefacenet
from streamfiqa.models.fr import create_fr
from streamfiqa.quality.scorers import create_scorer


def threshold_at_fmr(impostor: np.ndarray, fmr: float = 1e-3) -> float:
    """The similarity threshold with at most ``fmr`` of impostors strictly above it."""
    imp = np.sort(np.asarray(impostor, np.float64))[::-1]
    if not len(imp):
        raise ValueError("threshold_at_fmr: expected impostor scores, found none")
    return float(imp[min(int(np.floor(fmr * len(imp))), len(imp) - 1)])


def edc(similarity: np.ndarray, quality: np.ndarray, genuine: np.ndarray, fmr: float = 1e-3) -> dict:
    """EDC of one quality measure.

    Args:
        similarity: per pair, comparison score (higher = more similar).
        quality: per pair, pair quality (already the min of the two images').
        genuine: per pair, True for mated pairs.

    Returns:
        ``{"threshold", "discard": [...], "fnmr": [...], "pauc_0.2", "pauc_0.3"}``.
    """
    sim, q, gen = (np.asarray(v) for v in (similarity, quality, genuine))
    thr = threshold_at_fmr(sim[~gen], fmr)
    gs, gq = sim[gen].astype(np.float64), q[gen].astype(np.float64)
    order = np.argsort(gq, kind="stable")
    gs, gq = gs[order], gq[order]
    n = len(gs)
    # Discard levels: 0, then the end of every run of equal quality.
    cuts = [0] + [i + 1 for i in range(n - 1) if gq[i + 1] != gq[i]] + [n]
    discard, fnmr = [], []
    for c in cuts:
        kept = gs[c:]
        discard.append(c / n)
        fnmr.append(float(np.mean(kept <= thr)) if len(kept) else 0.0)
    return {"threshold": thr, "discard": discard, "fnmr": fnmr,
            "pauc_0.2": pauc(discard, fnmr, 0.2), "pauc_0.3": pauc(discard, fnmr, 0.3)}


def pauc(discard: list, fnmr: list, limit: float) -> float:
    """Area under the EDC step curve (each FNMR holds until the next discard level) on [0, limit]."""
    area = 0.0
    for i, (x, y) in enumerate(zip(discard, fnmr)):
        nxt = discard[i + 1] if i + 1 < len(discard) else 1.0
        lo, hi = min(x, limit), min(nxt, limit)
        area += max(hi - lo, 0.0) * y
    return area


def plot_edc(curves: dict[str, dict], path: str | Path, title: str = "EDC") -> None:
    """Draw the EDC step curves into a PNG with OpenCV (no plotting library needed)."""
    w, h, m = 720, 480, 60
    img = np.full((h, w, 3), 255, np.uint8)
    ymax = max([max(c["fnmr"]) for c in curves.values()] + [1e-3]) * 1.1
    px = lambda x: int(m + x * (w - 2 * m))  # noqa: E731
    py = lambda y: int(h - m - y / ymax * (h - 2 * m))  # noqa: E731
    cv2.rectangle(img, (m, m), (w - m, h - m), (0, 0, 0), 1)
    for t in np.linspace(0, 1, 6):
        cv2.putText(img, f"{t:.1f}", (px(t) - 10, h - m + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        cv2.putText(img, f"{t * ymax:.3f}", (5, py(t * ymax) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.putText(img, "fraction of genuine pairs discarded", (w // 2 - 130, h - 15), cv2.FONT_HERSHEY_SIMPLEX,
                0.5, (0, 0, 0), 1)
    cv2.putText(img, f"{title}: FNMR at FMR 1e-3", (m, 35), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1)
    colors = [(200, 60, 30), (30, 140, 30), (30, 30, 200), (150, 0, 150), (0, 150, 150), (90, 90, 90)]
    for k, (name, c) in enumerate(curves.items()):
        col = colors[k % len(colors)]
        xs, ys = c["discard"] + [1.0], c["fnmr"]
        for i, y in enumerate(ys):
            cv2.line(img, (px(xs[i]), py(y)), (px(xs[i + 1]), py(y)), col, 2)
            if i + 1 < len(ys):
                cv2.line(img, (px(xs[i + 1]), py(y)), (px(xs[i + 1]), py(ys[i + 1])), col, 2)
        cv2.putText(img, f"{name} pAUC0.2={c['pauc_0.2']:.4f}", (w - m - 260, m + 20 + 18 * k),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, col, 1)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"could not write {path}")


def write_report(curves: dict[str, dict], extra: dict, out: str | Path) -> tuple[Path, Path]:
    """``out/edc.json`` and ``out/edc.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "edc.json").write_text(json.dumps({**extra, "curves": curves}, indent=1))
    plot_edc(curves, out / "edc.png")
    return out / "edc.json", out / "edc.png"


# --- EDC on identity-labelled photos (the project's quality metric) -------------------------------------------


def normalised(curve: dict, limit: float) -> float:
    """pAUC over ``[0, limit]`` divided by what discarding at random gives (FNMR stays at its start value
    on average), so 1.0 = random, lower = better, and the oracle's value is the floor."""
    base = curve["fnmr"][0] * limit
    return float(curve[f"pauc_{limit}"] / base) if base > 0 else float("nan")


def edc_table(similarity: np.ndarray, genuine: np.ndarray, a: np.ndarray, b: np.ndarray,
              qualities: dict[str, np.ndarray], fmr: float = 1e-3, seed: int = 0) -> dict[str, dict]:
    """EDC of each quality (per image; pair quality = the lower of its two) plus ``random`` (seeded random
    image qualities) and ``oracle`` (genuine pairs ordered by their own similarity: the best any order can do)."""
    rng = np.random.default_rng(seed)
    n = int(max(a.max(), b.max())) + 1
    rows = {name: edc(similarity, np.minimum(q[a], q[b]), genuine, fmr) for name, q in qualities.items()}
    rand = rng.random(n)
    rows["random"] = edc(similarity, np.minimum(rand[a], rand[b]), genuine, fmr)
    rows["oracle"] = edc(similarity, similarity, genuine, fmr)
    for curve in rows.values():
        curve["norm_0.2"], curve["norm_0.3"] = normalised(curve, 0.2), normalised(curve, 0.3)
    return rows


def calibrate(curve: dict, quality_pairs: np.ndarray, max_discard: float = 0.1,
              target_fnmr: float | None = None) -> dict:
    """The quality threshold of one scorer × FR model: the lowest discard fraction (at most ``max_discard``)
    whose FNMR reaches ``target_fnmr`` (default: the best FNMR reachable within ``max_discard``), and the
    pair-quality value at that cut (an image below it is what the EDC discarded).

    Args:
        curve: an :func:`edc` result.
        quality_pairs: the genuine pairs' qualities (the ``min`` of their two images), any order.
    """
    d, f = np.asarray(curve["discard"]), np.asarray(curve["fnmr"])
    within = d <= max_discard + 1e-12
    goal = float(f[within].min()) if target_fnmr is None else float(target_fnmr)
    hit = np.flatnonzero(within & (f <= goal + 1e-12))
    k = int(hit[0]) if len(hit) else int(np.flatnonzero(within)[-1])
    q = np.sort(np.asarray(quality_pairs, np.float64))
    cut = int(round(d[k] * len(q)))
    threshold = float(q[cut]) if cut < len(q) else float(q[-1])
    if cut == 0:
        threshold = float(q[0])
    return {"threshold": threshold, "discard": float(d[k]), "fnmr": float(f[k]), "fnmr_at_0": float(f[0]),
            "target_fnmr": goal, "max_discard": max_discard, "fr_threshold": curve["threshold"]}


def with_shared_weights(name: str, args: dict) -> dict:
    """Development convenience: ``mobilefacenet`` without weights takes the one in ``../shared``."""

    args = dict(args)
    if name == "mobilefacenet" and "weights" not in args:
        args["weights"] = str(shared_mobilefacenet())
    if args.get("fr") == "mobilefacenet" and not args.get("fr_args"):
        args["fr_args"] = {"weights": str(shared_mobilefacenet())}
    return args


def identity_eval(folder: str | Path, split: str, protocols: list[str], frs: list[str], scorers: list[str],
                  fmr: float = 1e-3, impostors: int = 50_000, seed: int = 0, max_photos: int = 0,
                  calibrate_discard: float = 0.1, progress: bool = False) -> dict:
    """EDC for every scorer × FR model × protocol on the identity folder's ``split`` half.

    Returns ``{"rows": [...], "curves": {...}, "calibration": {...}, "meta": {...}}``; each row has
    ``protocol, fr, scorer, pauc_0.2, pauc_0.3, norm_0.2, norm_0.3, fnmr_at_0``.
    """

    ids = read_identities(folder).split(split, seed)
    if max_photos:
        ids = ids.subset(np.arange(len(ids)) < max_photos)
    a, b, genuine = pairs(ids.ids, impostors, seed)
    rows, curves, calibration = [], {}, {}
    fr_models = {}
    for spec in frs:
        label, name, args = parse_spec(spec)
        fr_models[label] = create_fr(name, **with_shared_weights(name, args))
    scorer_models = {}
    for spec in scorers:
        label, name, args = parse_spec(spec)
        scorer_models[label] = create_scorer(name, **with_shared_weights(name, args))
    meta = {"folder": str(folder), "split": split, "photos": len(ids), "identities": int(len(np.unique(ids.ids))),
            "genuine_pairs": int(genuine.sum()), "impostor_pairs": int((~genuine).sum()), "fmr": fmr, "seed": seed}
    for protocol in protocols:
        crops = load_crops(ids.paths, protocol=protocol, seed=seed, progress=progress)
        meta[f"{protocol}_redetected"] = float(crops.redetected.mean())
        qualities = {label: np.asarray(m.score(crops.aligned), np.float64) for label, m in scorer_models.items()}
        for fr_label, fr in fr_models.items():
            emb = fr.embed(crops.aligned)
            sim = (emb[a] * emb[b]).sum(1)
            table = edc_table(sim, genuine, a, b, qualities, fmr, seed)
            for label, curve in table.items():
                rows.append({"protocol": protocol, "fr": fr_label, "scorer": label,
                             **{k: round(float(curve[k]), 5) for k in ("pauc_0.2", "pauc_0.3", "norm_0.2", "norm_0.3")},
                             "fnmr_at_0": round(float(curve["fnmr"][0]), 5)})
                curves[f"{protocol}/{fr_label}/{label}"] = curve
                if label in qualities and protocol == protocols[-1]:
                    qp = np.minimum(qualities[label][a], qualities[label][b])[genuine]
                    calibration.setdefault(label, {})[fr_label] = {
                        **calibrate(curve, qp, calibrate_discard), "protocol": protocol}
    return {"rows": rows, "curves": curves, "calibration": calibration, "meta": meta}
