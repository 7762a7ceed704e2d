"""5-point similarity alignment to the ArcFace 112×112 template, display crops, and jittered re-alignment (the
spread that other detectors' landmarks give the same face; the robust score averages over it)."""
from __future__ import annotations

import cv2
import numpy as np

from streamfiqa.types import Crops, Faces

#: ArcFace / insightface 112×112 landmark template (eyes, nose, mouth corners).
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama, no reflection) mapping ``src`` points onto ``dst``.

    Returns:
        ``(2, 3)`` affine matrix.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(cov) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    scale = (sig * sign).sum() / s.var(0).sum()
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


class Aligner:
    """Cuts aligned 112×112 crops and wider square display crops.

    Args:
        display_margin: margin added on each side of the box, as a fraction of its longer side.
        display_size: display crops are resized to this side in pixels (0 = native size).
    """

    def __init__(self, display_margin: float = 0.4, display_size: int = 0) -> None:
        if display_margin < 0:
            raise ValueError(f"display_margin: expected >= 0, found {display_margin}")
        self.display_margin = float(display_margin)
        self.display_size = int(display_size)

    def align(self, image: np.ndarray, faces: Faces) -> Crops:
        """Return the aligned and display crops of ``faces`` in ``image``, with the pixels of each aligned crop that
        come from inside the frame."""
        aligned = np.zeros((len(faces), 112, 112, 3), np.uint8)
        valid = np.ones((len(faces), 112, 112), bool)
        display = []
        for k in range(len(faces)):
            m = similarity_transform(faces.landmarks[k], ARCFACE_TEMPLATE)
            aligned[k] = cv2.warpAffine(image, m, (112, 112), borderValue=0)
            valid[k] = inside_frame(m, image.shape[:2])
            display.append(self.display_crop(image, faces.boxes[k]))
        return Crops(aligned, display, valid)

    def display_square(self, box: np.ndarray) -> tuple[float, float, float]:
        """``(left, top, side)`` in frame pixels of the square a display crop of ``box`` shows (before rounding to
        whole pixels and resizing)."""
        x1, y1, x2, y2 = (float(v) for v in box[:4])
        side = max(x2 - x1, y2 - y1) * (1 + 2 * self.display_margin)
        return (x1 + x2) / 2 - side / 2, (y1 + y2) / 2 - side / 2, side

    def display_crop(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Square crop around ``box`` with margin, zero-padded past the frame edges."""
        x, y, side = self.display_square(box)
        left, top = int(round(x)), int(round(y))
        n = max(int(round(side)), 1)
        h, w = image.shape[:2]
        out = np.zeros((n, n, 3), np.uint8)
        sx1, sy1, sx2, sy2 = max(left, 0), max(top, 0), min(left + n, w), min(top + n, h)
        if sx2 > sx1 and sy2 > sy1:
            out[sy1 - top:sy2 - top, sx1 - left:sx2 - left] = image[sy1:sy2, sx1:sx2]
        if self.display_size and n != self.display_size:
            interp = cv2.INTER_AREA if n > self.display_size else cv2.INTER_LINEAR
            out = cv2.resize(out, (self.display_size, self.display_size), interpolation=interp)
        return out


_PIXELS = np.stack(np.meshgrid(np.arange(112.0), np.arange(112.0)), -1).reshape(-1, 2)
_CORNERS = np.array([[0.0, 0.0], [111.0, 0.0], [0.0, 111.0], [111.0, 111.0]])


def inside_frame(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(112, 112)`` bool: the pixels of an aligned crop (``m``: frame → crop, 2×3) that a frame of ``shape``
    ``(h, w)`` fills; the others are black padding (a face cut by the frame's edge)."""
    inv = cv2.invertAffineTransform(m)
    h, w = shape

    def inside(pts: np.ndarray) -> np.ndarray:
        src = pts @ inv[:, :2].T + inv[:, 2]
        return (src[:, 0] >= 0) & (src[:, 0] <= w - 1) & (src[:, 1] >= 0) & (src[:, 1] <= h - 1)

    if inside(_CORNERS).all():  # the usual case: the whole crop lies in the frame
        return np.ones((112, 112), bool)
    return inside(_PIXELS).reshape(112, 112)


def jitter_alignment(aligned: np.ndarray, seed: int = 0, shift: float = 2.0, scale: float = 0.03,
                     angle: float = 3.0) -> np.ndarray:
    """Each crop re-sampled under a seeded small similarity (±``shift`` px, ±``scale``, ±``angle``°): the
    spread that different detectors' landmarks give the same face (±2 px of landmark jitter)."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(aligned)
    for k, a in enumerate(aligned):
        m = cv2.getRotationMatrix2D((56.0, 56.0), rng.uniform(-angle, angle), 1.0 + rng.uniform(-scale, scale))
        m[:, 2] += rng.uniform(-shift, shift, 2)
        out[k] = cv2.warpAffine(a, m, (112, 112), borderMode=cv2.BORDER_REFLECT)
    return out
