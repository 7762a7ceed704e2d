"""Same-scene jump cuts against the frames around them: does the tracked face's look or box tell a jump cut from
talking and blinking where the picture's change does not?

    python -m bench.jumpcuts --half dev     # ≈ 6 min on 2 cores; prints JSON lines

Runs the offline pipeline on every clip of one half of ../shared's talking clips and on a jump case of each
single-person clip without cuts (``make_jump``: its first and last 40 %), and reports, per frame, the structural
change the cut rules see and, for the largest face, its cosine (the student's embedding) and box IoU to the best
overlapping face of the frame before: each truth cut's values, whether the pipeline found it, and the quantiles of
the same values over every other frame. An analysis for deciding rules on the development half, not a bench row.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def frame_rows(path: str | Path, base: dict) -> list[dict]:
    """Per processed frame: its index, change, whether it was a cut, and the largest face's look and box against
    the best-overlapping face of the frame before (NaN where either frame has no face)."""
    from streamfiqa.eval.tracking import observe_clip
    from streamfiqa.track.matching import iou_matrix

    frames: list = []
    observe_clip(str(path), lambda sid, sf, a, c: frames.append(
        (sf.frame.index, sf.frame.change, bool(sf.cut), sf.faces.boxes.copy(),
         None if sf.embeddings is None else sf.embeddings.copy())), [], base)
    rows = []
    for (_, _, _, pb, pe), (i, change, cut, boxes, emb) in zip(frames, frames[1:]):
        cos = iou = float("nan")
        if len(pb) and len(boxes) and pe is not None and emb is not None:
            j = int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))
            ov = iou_matrix(pb, boxes[j:j + 1])[:, 0]
            k = int(np.argmax(ov))
            cos, iou = float(pe[k] @ emb[j]), float(ov[k])
        rows.append({"frame": int(i), "change": round(float(change), 3), "cut": cut, "cos": round(cos, 3),
                     "iou": round(iou, 3)})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.jumpcuts", description=__doc__.split("\n")[0])
    p.add_argument("--half", default="dev", choices=("dev", "test"))
    args = p.parse_args(argv)
    from pipelines.offline import DEFAULTS
    from streamfiqa.eval.videocases import case_folder, make_jump
    from streamfiqa.eval.videoset import read_video_set

    clips = list(read_video_set().half(args.half, 0))
    others: dict = {"cos": [], "iou": [], "cos_change_2": []}
    folder = case_folder(clips, "jumps")  # made once, the same files for every run
    items = [(c.name, c.path, c.cuts) for c in clips]
    items += [(j.name, j.path, j.cuts) for j in (make_jump(c, folder) for c in clips
                                                  if c.single_person and not c.cuts)]
    for name, path, cuts in items:
        for r in frame_rows(path, DEFAULTS):
            if r["frame"] in cuts:
                print(json.dumps({"clip": name, **r}))
            elif not np.isnan(r["cos"]):  # both frames had a face
                others["cos"].append(r["cos"])
                others["iou"].append(r["iou"])
                if r["change"] >= 2.0:
                    others["cos_change_2"].append(r["cos"])
    q = (0.001, 0.01, 0.05, 0.5)
    print(json.dumps({"other_frames": len(others["cos"]), "quantiles": q,
                      **{k: [round(float(x), 3) for x in np.quantile(v, q)] for k, v in others.items() if v},
                      "min_cos_change_2": round(min(others["cos_change_2"]), 3) if others["cos_change_2"] else None}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
