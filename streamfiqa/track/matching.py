"""Association: box overlap and the optimal one-to-one assignment under a cost ceiling."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def _overlap(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairwise intersection areas (N, M) of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4), and each side's areas."""
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    return inter, np.prod(a[:, 2:] - a[:, :2], axis=1), np.prod(b[:, 2:] - b[:, :2], axis=1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    inter, area_a, area_b = _overlap(a, b)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


#: A box with at least this share of its area inside a bigger box is nested in it (see :func:`nested`).
INSIDE = 0.8


def nested(box: np.ndarray, others: list, inside: float = INSIDE) -> bool:
    """Whether ``inside`` or more of xyxy ``box``'s area lies within one of ``others`` that is bigger than it: on one
    frame, a detection nested in a bigger face is a part of it found at another scale (a real face behind another
    would be hidden by it)."""
    if not len(others):
        return False
    inter, area, area_others = _overlap(np.asarray(box, np.float64)[None, :4],
                                        np.asarray([np.asarray(o, np.float64)[:4] for o in others]))
    return bool(np.any((area_others > area[0]) & (inter[0] >= inside * max(float(area[0]), 1e-9))))


def match(cost: np.ndarray, max_cost: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    if cost.size == 0:
        return [], list(range(cost.shape[0])), list(range(cost.shape[1]))
    rows, cols = linear_sum_assignment(cost)
    pairs = [(r, c) for r, c in zip(rows, cols) if cost[r, c] <= max_cost]
    mr = {r for r, _ in pairs}
    mc = {c for _, c in pairs}
    return pairs, [r for r in range(cost.shape[0]) if r not in mr], [c for c in range(cost.shape[1]) if c not in mc]
