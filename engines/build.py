"""Build a TensorRT engine for a model (ONNX export first), into the engine cache.

    python -m engines.build --model ediffiqa_s --weights ediffiqaS.pth --precision fp16 --max-batch 256
    python -m engines.build --model ediffiqa_s --random --precision fp16      # speed tests

Without TensorRT and a GPU the command exports the ONNX model, checks it with ONNX Runtime and exits 3
("engine not built here"); the engine is then built on the GPU machine by the same command.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

MODELS = {"ediffiqa_s": "S", "ediffiqa_t": "T", "ediffiqa_m": "M", "ediffiqa_l": "L"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engines.build", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, choices=sorted(MODELS))
    p.add_argument("--weights", help="official checkpoint")
    p.add_argument("--random", action="store_true", help="random weights of the official layout (speed only)")
    p.add_argument("--precision", default="fp16", choices=("fp16", "fp32"))
    p.add_argument("--max-batch", type=int, default=256)
    p.add_argument("--cache-dir", default=None, help="engine cache (default: the user's cache, ~/.cache/streamfiqa)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from engines.export import export_onnx, parity
    from streamfiqa.backends import available
    from streamfiqa.backends import cache_dir
    from streamfiqa.models.ediffiqa import EDifFIQA, exported_onnx, load_ediffiqa

    cache = Path(args.cache_dir) if args.cache_dir else cache_dir()
    if args.weights:
        model = load_ediffiqa(args.weights, MODELS[args.model])
        onnx = exported_onnx(model, args.weights, cache)
    elif args.random:
        torch.manual_seed(0)
        model = EDifFIQA(MODELS[args.model]).eval()
        onnx = export_onnx(model, cache / f"{args.model}-random.onnx")
    else:
        p.error("expected --weights PATH or --random")
    report = {"model": args.model, "onnx": str(onnx), "onnxruntime_vs_torch": parity(model, onnx)}
    if not available("tensorrt"):
        report["engine"] = None
        report["why"] = "TensorRT or a CUDA device is not available here"
        print(json.dumps(report))
        return 3
    from streamfiqa.backends.tensorrt_backend import TensorRTBackend

    backend = TensorRTBackend(str(onnx), args.precision, args.max_batch, cache)
    x = torch.rand(8, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        ref = model(x).numpy()
    report.update({"engine": str(backend.engine_file), "precision": args.precision, "max_batch": args.max_batch,
                   "tensorrt_vs_torch": float(abs(backend.run(x)[0].reshape(-1) - ref).max())})
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
