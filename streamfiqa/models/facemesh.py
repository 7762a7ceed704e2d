"""MediaPipe's face mesh and iris networks (Apache-2.0) in torch, for what five detector points cannot tell: whether
the eyes are open and how wide the mouth is.

The networks are MediaPipe's ``face_landmark.tflite`` and ``iris_landmark.tflite`` (the mediapipe 0.10.14 wheel on
PyPI), converted once by :mod:`streamfiqa.train.tflite` into ``weights/face_mesh.pt`` and ``weights/face_iris.pt``
(float16 weights as MediaPipe ships them; the torch outputs agree with LiteRT's to 6e-5 px). The mesh takes a
192 × 192 RGB face crop in [0, 1] with the face filling about two thirds of it and gives 468 points ``(x, y, z)``
in crop pixels and a face-presence logit; the iris network takes a 64 × 64 crop of one (left) eye, 2.3 × the eye's
width, and gives 71 eye-contour points, the lids among them (the mesh's own lids barely close with the eyes).

Measures:

* **eyes_open**: the eye aspect ratio of the iris network's lids — the mean of three lid-to-lid distances over the
  corner-to-corner width, both eyes averaged (open ≈ 0.25–0.4; shut 0.09–0.16 on andrew_clip_1's blinks);
* **mouth_open**: the inner-lip gap over the distance between the outer eye corners (closed ≈ 0, speaking
  ≈ 0.05–0.2, a yawn or a shout ≈ 0.4+);
* **face_presence**: the network's own belief that a face is in the crop (sigmoid), a second opinion on non-faces.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "face_mesh.pt"
IRIS_WEIGHTS = WEIGHTS.with_name("face_iris.pt")
SIZE = 192
#: The face's box side (RetinaFace's box: brow to chin) as a fraction of the crop's side, as MediaPipe's ROI has it
#: (its face-detector box enlarged 1.5 ×).
FILL = 1 / 1.5
# canonical mesh indices: each eye's corners, left to right in the picture; inner lips; outer eye corners
_EYES = ((33, 133), (362, 263))
# the iris network's contour: 0 and 8 the corners, 1–7 the lower lid, 9–15 the upper; (upper, lower) pairs
_LIDS = ((11, 3), (12, 4), (13, 5))
EYE_SIZE, EYE_SCALE = 64, 2.3
_LIPS = (13, 14)
_OUTER = (33, 263)
MEASURES = ("eyes_open", "mouth_open", "face_presence")


def _upright(image: np.ndarray, centre, angle: float, scale: float, size: int) -> np.ndarray:
    """``size`` × ``size`` pixels of ``image`` around ``centre``, turned by ``angle`` degrees and scaled by ``scale``
    (zero past its edges)."""
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle), float(scale))
    m[:, 2] += size / 2 - np.asarray(centre, np.float64)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def _net():
    """The torch module that runs a converted TFLite graph (built lazily: torch is a heavy import)."""
    import torch
    import torch.nn.functional as F

    class TfliteNet(torch.nn.Module):
        """Runs the operators of a :mod:`streamfiqa.train.tflite` graph in NCHW."""

        def __init__(self, graph: dict) -> None:
            super().__init__()
            if graph.get("format") != "streamfiqa-tflite-graph/1":
                raise ValueError(f"face mesh: expected a streamfiqa-tflite-graph/1 file, found {graph.get('format')!r}")
            self.ops, self.inputs, self.outputs = graph["ops"], graph["inputs"], graph["outputs"]
            # the operator that takes each weight (the first, as the layout of a shared weight follows its first use)
            used_by = {op["in"][1]: op["op"] for op in reversed(self.ops) if len(op["in"]) > 1}
            self.w = {int(k): self._layout(used_by.get(int(k)), v.float()) for k, v in graph["weights"].items()}

        @staticmethod
        def _layout(op: str | None, w):
            """TFLite keeps NHWC tensors and OHWI kernels; torch wants NCHW / OIHW."""
            if op == "CONV_2D":
                return w.permute(0, 3, 1, 2).contiguous()
            if op == "DEPTHWISE_CONV_2D":  # (1, kh, kw, C) → (C, 1, kh, kw)
                return w.permute(3, 0, 1, 2).contiguous()
            if op == "PRELU":  # broadcast over NHWC → per channel
                return w.reshape(-1)
            if op == "PAD":
                return w.long()
            return w

        @staticmethod
        def _same(x, kernel, stride):
            """TensorFlow's SAME padding: the odd pixel goes after."""
            pads = []
            for size, k, s in ((x.shape[3], kernel[1], stride[1]), (x.shape[2], kernel[0], stride[0])):
                total = max((-(-size // s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
            return F.pad(x, pads)

        @staticmethod
        def _act(x, act: str):
            return {"NONE": lambda v: v, "RELU": F.relu, "RELU6": lambda v: F.hardtanh(v, 0.0, 6.0)}[act](x)

        def forward(self, x):  # x: (N, 192, 192, 3) float RGB in [0, 1]
            t = {self.inputs[0]: x.permute(0, 3, 1, 2)}
            for op in self.ops:
                kind, ins = op["op"], op["in"]
                a = t[ins[0]]
                if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                    w, b = self.w[ins[1]], self.w[ins[2]] if len(ins) > 2 and ins[2] >= 0 else None
                    if op["padding"] == "SAME":
                        a = self._same(a, w.shape[2:], op["stride"])
                    groups = a.shape[1] if kind == "DEPTHWISE_CONV_2D" else 1
                    y = self._act(F.conv2d(a, w, b, stride=op["stride"], groups=groups), op["act"])
                elif kind == "PRELU":
                    alpha = self.w[ins[1]]
                    y = F.prelu(a, alpha)
                elif kind == "ADD":
                    y = self._act(a + t[ins[1]], op["act"])
                elif kind == "MAX_POOL_2D":
                    if op["padding"] == "SAME":
                        a = self._same(a, op["kernel"], op["stride"])
                    y = F.max_pool2d(a, op["kernel"], op["stride"])
                elif kind == "PAD":  # paddings are given per NHWC axis
                    p = self.w[ins[1]].tolist()
                    y = F.pad(a, [p[2][0], p[2][1], p[1][0], p[1][1], p[3][0], p[3][1]])
                elif kind == "RESHAPE":  # in NHWC order, as TFLite flattens
                    y = a.permute(0, 2, 3, 1).reshape(a.shape[0], *op["shape"][1:])
                    y = y.reshape(*y.shape, *([1] * (4 - y.dim()))).permute(0, 3, 1, 2)
                else:
                    raise ValueError(f"face mesh: operator {kind} is not supported")
                t[op["out"]] = y
            return [t[o].permute(0, 2, 3, 1).reshape(x.shape[0], -1) for o in self.outputs]

    return TfliteNet


class FaceMesh:
    """468 face landmarks on face crops, and the eye and mouth measures taken from them.

    Args:
        weights: the converted mesh graph (default: the embedded ``weights/face_mesh.pt``).
        iris_weights: the converted iris graph (default: the embedded ``weights/face_iris.pt``).
    """

    def __init__(self, weights: str | Path | None = None, iris_weights: str | Path | None = None) -> None:
        import torch

        nets = []
        for path in (Path(weights) if weights else WEIGHTS, Path(iris_weights) if iris_weights else IRIS_WEIGHTS):
            if not path.is_file():
                raise FileNotFoundError(f"face mesh: expected the converted graph at {path}, found no file")
            nets.append(_net()(torch.load(path, map_location="cpu", weights_only=True)).eval())
        self.net, self.iris = nets

    def landmarks(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 468, 3)`` points in crop pixels and ``(N,)`` face-presence probabilities of ``(N, 192, 192, 3)`` uint8
        BGR crops."""
        import torch

        if crops.ndim != 4 or crops.shape[1:] != (SIZE, SIZE, 3):
            raise ValueError(f"face mesh: expected (N, {SIZE}, {SIZE}, 3) crops, found {crops.shape}")
        if not len(crops):
            return np.zeros((0, 468, 3), np.float32), np.zeros(0, np.float32)
        x = torch.from_numpy(np.ascontiguousarray(crops[..., ::-1])).float() / 255.0
        with torch.inference_mode():
            pts, flag = self.net(x)
        return pts.numpy().reshape(-1, 468, 3), torch.sigmoid(flag[:, 0]).numpy()

    @staticmethod
    def crop(image: np.ndarray, box: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """The 192-px crop the mesh expects: centred on ``box``, its side ``1 / FILL`` × the box's longer side, turned
        upright by the eye line of the five ``landmarks`` when given; zero past the image's edges."""
        x1, y1, x2, y2 = (float(v) for v in box[:4])
        side = max(x2 - x1, y2 - y1) / FILL
        angle = 0.0
        if landmarks is not None:
            (lx, ly), (rx, ry) = landmarks[0][:2], landmarks[1][:2]
            angle = float(np.degrees(np.arctan2(ry - ly, rx - lx)))
        return _upright(image, ((x1 + x2) / 2, (y1 + y2) / 2), angle, SIZE / side, SIZE)

    @staticmethod
    def eye_crops(crops: np.ndarray, points: np.ndarray) -> np.ndarray:
        """``(N, 2, 64, 64, 3)``: each face's two eyes as the iris network expects them, upright, ``EYE_SCALE`` × the
        eye's width, the picture's right eye mirrored (the network knows left eyes)."""
        out = np.zeros((len(crops), 2, EYE_SIZE, EYE_SIZE, 3), np.uint8)
        for n, (crop, p) in enumerate(zip(crops, points)):
            for k, (c1, c2) in enumerate(_EYES):
                a, b = p[c1, :2].astype(np.float64), p[c2, :2].astype(np.float64)
                width = max(float(np.linalg.norm(b - a)), 1.0)
                eye = _upright(crop, (a + b) / 2, np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0])),
                               EYE_SIZE / (EYE_SCALE * width), EYE_SIZE)
                out[n, k] = eye[:, ::-1] if k == 1 else eye
        return out

    def eyes_open(self, eyes: np.ndarray) -> np.ndarray:
        """``(N,)`` eye aspect ratio (both eyes averaged) of ``(N, 2, 64, 64, 3)`` BGR eye crops."""
        import torch

        if not len(eyes):
            return np.zeros(0, np.float32)
        x = torch.from_numpy(np.ascontiguousarray(eyes.reshape(-1, EYE_SIZE, EYE_SIZE, 3)[..., ::-1])).float() / 255
        with torch.inference_mode():
            contour = self.iris(x)[0].numpy().reshape(len(eyes), 2, 71, 3)[..., :2].astype(np.float64)
        lids = np.mean([np.linalg.norm(contour[:, :, u] - contour[:, :, lo], axis=-1) for u, lo in _LIDS], axis=0)
        width = np.maximum(np.linalg.norm(contour[:, :, 0] - contour[:, :, 8], axis=-1), 1e-6)
        return (lids / width).mean(1).astype(np.float32)

    @staticmethod
    def mouth_open(points: np.ndarray) -> np.ndarray:
        """``(N,)`` inner-lip gap over the outer eye corners' distance, from ``(N, 468, ≥2)`` mesh points."""
        p = points[..., :2].astype(np.float64)
        gap = np.linalg.norm(p[:, _LIPS[0]] - p[:, _LIPS[1]], axis=1)
        return (gap / np.maximum(np.linalg.norm(p[:, _OUTER[0]] - p[:, _OUTER[1]], axis=1), 1e-6)).astype(np.float32)

    def measure(self, crops: np.ndarray) -> np.ndarray:
        """``(N, 3)`` columns :data:`MEASURES` of 192-px face crops (:meth:`crop`)."""
        pts, presence = self.landmarks(crops)
        out = np.zeros((len(crops), len(MEASURES)), np.float32)
        if len(crops):
            out[:, 0] = self.eyes_open(self.eye_crops(crops, pts))
            out[:, 1], out[:, 2] = self.mouth_open(pts), presence
        return out
