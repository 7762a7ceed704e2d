"""Convert a small TensorFlow Lite convolutional network into the graph file that :mod:`streamfiqa.models.facemesh`
runs in torch (no TensorFlow or LiteRT at run time).

Only the operators of MediaPipe's face-landmark and iris networks are supported (``CONV_2D``, ``DEPTHWISE_CONV_2D``,
``PRELU``, ``ADD``, ``MAX_POOL_2D``, ``PAD``, ``RESHAPE`` and ``DEQUANTIZE`` of float16 weights); anything else is
refused by name. The file written is a plain dict (loadable with ``torch.load(weights_only=True)``): the operators
in order, each with its input and output tensor ids and options, the constant tensors by id (float16 as stored), and
the source's SHA-256.

Usage (the ``tflite`` flatbuffer reader is needed only here: ``pip install tflite``)::

    python -m streamfiqa.train.tflite face_landmark.tflite streamfiqa/weights/face_mesh.pt
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "PRELU", "ADD", "MAX_POOL_2D", "PAD", "RESHAPE", "DEQUANTIZE")
_ACTIVATIONS = {0: "NONE", 1: "RELU", 3: "RELU6"}
_NUMPY = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64}


def convert(src: Path, out: Path, **meta) -> dict:
    """Read ``src`` (a ``.tflite`` file) and write its graph to ``out``; returns the graph dict."""
    import tflite
    import torch

    raw = Path(src).read_bytes()
    model = tflite.Model.GetRootAsModel(raw, 0)
    if model.SubgraphsLength() != 1:
        raise ValueError(f"{src}: expected one subgraph, found {model.SubgraphsLength()}")
    g = model.Subgraphs(0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

    def const(t: int) -> np.ndarray | None:
        ten = g.Tensors(t)
        data = model.Buffers(ten.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data is None or not len(data):
            return None
        if ten.Type() not in _NUMPY:
            raise ValueError(f"{src}: tensor {t} has TFLite type {ten.Type()}, expected float32/float16/int32/int64")
        return np.frombuffer(data.tobytes(), _NUMPY[ten.Type()]).reshape(ten.ShapeAsNumpy())

    ops, weights, alias = [], {}, {}
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        if name not in SUPPORTED:
            raise ValueError(f"{src}: operator {i} is {name}; this converter supports {', '.join(SUPPORTED)}")
        ins, outs = [int(t) for t in op.InputsAsNumpy()], [int(t) for t in op.OutputsAsNumpy()]
        if name == "DEQUANTIZE":  # float16 weights: keep them as they are stored, widen when loading
            alias[outs[0]] = ins[0]
            continue
        ins = [alias.get(t, t) for t in ins]
        for t in ins:
            c = const(t)
            if c is not None:
                weights[str(t)] = torch.from_numpy(c.copy())
        entry = {"op": name, "in": ins, "out": outs[0]}
        table = op.BuiltinOptions()
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "ADD"):
            cls = {"CONV_2D": tflite.Conv2DOptions, "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
                   "MAX_POOL_2D": tflite.Pool2DOptions, "ADD": tflite.AddOptions}[name]
            opt = cls()
            opt.Init(table.Bytes, table.Pos)
            act = opt.FusedActivationFunction()
            if act not in _ACTIVATIONS:
                raise ValueError(f"{src}: operator {i} ({name}) has fused activation {act}, expected one of "
                                 f"{sorted(_ACTIVATIONS)}")
            entry["act"] = _ACTIVATIONS[act]
            if name != "ADD":
                entry["stride"] = [opt.StrideH(), opt.StrideW()]
                entry["padding"] = "SAME" if opt.Padding() == tflite.Padding.SAME else "VALID"
            if name == "MAX_POOL_2D":
                entry["kernel"] = [opt.FilterHeight(), opt.FilterWidth()]
            if name in ("CONV_2D", "DEPTHWISE_CONV_2D") and (opt.DilationHFactor(), opt.DilationWFactor()) != (1, 1):
                raise ValueError(f"{src}: operator {i} ({name}) is dilated; not supported")
        if name == "RESHAPE":
            entry["shape"] = [int(v) for v in g.Tensors(outs[0]).ShapeAsNumpy()]
            entry["in"] = ins[:1]
        ops.append(entry)
    graph = {"format": "streamfiqa-tflite-graph/1", "source": Path(src).name,
             "sha256": hashlib.sha256(raw).hexdigest(), "inputs": [int(t) for t in g.InputsAsNumpy()],
             "input_shape": [int(v) for v in g.Tensors(int(g.InputsAsNumpy()[0])).ShapeAsNumpy()],
             "outputs": [int(t) for t in g.OutputsAsNumpy()], "ops": ops, "weights": weights, **meta}
    torch.save(graph, out)
    log.info("%s: %d operators, %d constant tensors → %s", src, len(ops), len(weights), out)
    return graph


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m streamfiqa.train.tflite", description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="the .tflite file")
    ap.add_argument("out", type=Path, help="the graph file to write (.pt)")
    ap.add_argument("--licence", default="", help="the source's licence, stored with the graph")
    ap.add_argument("--origin", default="", help="where the source came from, stored with the graph")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.src.is_file():
        print(f"error: {args.src}: no such file", file=sys.stderr)
        return 2
    convert(args.src, args.out, licence=args.licence, origin=args.origin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
