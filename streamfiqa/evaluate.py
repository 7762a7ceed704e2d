"""EDC (error-versus-discard characteristic) evaluation of quality scores on labelled pairs.

The standard protocol (as in the CR-FIQA / DifFIQA evaluations):

* pair quality = the lower quality of its two images;
* the decision threshold is fixed once, at FMR = 1e-3 over all impostor similarities;
* the lowest-quality genuine pairs are discarded first, pairs of equal quality together;
* y = FNMR of the genuine pairs kept, x = fraction of genuine pairs discarded;
* pAUC = area under that step curve from 0 to 0.2 and to 0.3 (not normalised).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass
class Pairs:
    """Labelled comparisons: image names ``a``, ``b`` and ``genuine`` (True = same person)."""

    a: list
    b: list
    genuine: np.ndarray

    def __post_init__(self) -> None:
        if not len(self.a) == len(self.b) == len(self.genuine):
            raise ValueError(f"Pairs: expected equal lengths, found {len(self.a)}, {len(self.b)}, "
                             f"{len(self.genuine)}")


def pair_index(pairs: Pairs, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of ``names`` for each pair's two images: ``(keep, ia, ib)``, where ``keep`` marks the pairs
    whose both images are present and ``ia``/``ib`` index the kept ones."""
    index = {n: k for k, n in enumerate(names)}
    keep = np.array([a in index and b in index for a, b in zip(pairs.a, pairs.b)], bool)
    ia = np.array([index[a] for a, k in zip(pairs.a, keep) if k], np.int64)
    ib = np.array([index[b] for b, k in zip(pairs.b, keep) if k], np.int64)
    return keep, ia, ib


def read_pairs(path: str | Path) -> Pairs:
    """A deepface-style CSV with columns ``file_x, file_y, Decision`` (Yes/No)."""
    a, b, g = [], [], []
    with open(path, newline="") as fh:
        rows = csv.DictReader(fh)
        need = {"file_x", "file_y", "Decision"}
        if not need <= set(rows.fieldnames or []):
            raise ValueError(f"{path}: expected columns {sorted(need)}, found {rows.fieldnames}")
        for row in rows:
            a.append(row["file_x"])
            b.append(row["file_y"])
            g.append(row["Decision"].strip().lower() == "yes")
    return Pairs(a, b, np.array(g, bool))


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
