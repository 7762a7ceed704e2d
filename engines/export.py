"""Export eDifFIQA to ONNX with a dynamic batch axis, and check ONNX Runtime against PyTorch.

    python -m engines.export --weights ediffiqaS.pth --out ediffiqa_s.onnx
    python -m engines.export --variant S --random --out /tmp/ediffiqa_s.onnx   # layout only

The ONNX model takes ``input``: ``(N, 3, 112, 112)`` float32 RGB in ``[-1, 1]`` and returns
``quality``: ``(N,)``. It is the input of the TensorRT engine (``engines.build``).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from streamfiqa.backends.export import export_onnx

log = logging.getLogger("engines.export")


def parity(model: torch.nn.Module, onnx_path: str | Path, batches=(1, 7, 32), seed: int = 0) -> float:
    """Largest |ONNX Runtime − PyTorch| over random inputs of the given batch sizes."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for b in batches:
        x = torch.rand((b, 3, 112, 112), generator=gen) * 2 - 1
        with torch.no_grad():
            ref = model(x).numpy()
        got = sess.run(None, {"input": x.numpy()})[0]
        if got.shape != ref.shape:
            raise ValueError(f"ONNX output shape: expected {ref.shape}, found {got.shape}")
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engines.export", description=__doc__.split("\n")[0])
    p.add_argument("--weights", help="official eDifFIQA checkpoint (.pth)")
    p.add_argument("--variant", default=None, help="S, T, M or L (detected from --weights when omitted)")
    p.add_argument("--random", action="store_true", help="random weights (layout and speed only)")
    p.add_argument("--out", required=True, help="ONNX file to write")
    p.add_argument("--opset", type=int, default=17)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from streamfiqa.models.ediffiqa import EDifFIQA, load_ediffiqa

    if args.weights:
        try:
            model = load_ediffiqa(args.weights, args.variant)
        except (ValueError, OSError) as exc:  # a user's path or checkpoint: one line, exit 2
            logging.getLogger("engines.export").error("%s", exc)
            return 2
    elif args.random:
        torch.manual_seed(0)
        model = EDifFIQA(args.variant or "S").eval()
    else:
        p.error("expected --weights PATH or --random")
    path = export_onnx(model, args.out, args.opset)
    err = parity(model, path)
    print(json.dumps({"onnx": str(path), "variant": model.variant, "max_abs_diff_vs_torch": err,
                      "parity_1e-4": err <= 1e-4}))
    return 0 if err <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
