"""Picture-in-picture inserts: is an inset that appears over a talking head taken for a shot cut?

    python -m bench.inserts --half dev     # ≈ 4 min on 2 cores; prints JSON lines

A news programme cuts a second picture into the frame while the presenter goes on talking: no cut (the presenter's
track should go on), yet the picture changes at once. From one half of ../shared's talking clips this builds insert
cases of real footage (``make_paste`` entering at 2 s: another person's clip shrunk to 0.35 and 0.5 of the frame's
height, in the bottom-right corner, pairs of single-person clips without cuts, seeded) and runs the offline pipeline
on each (second look and face measures off: they decide no cut). Per case: whether a cut was flagged within a frame
of the insert, the host face's box IoU and look (the student's cosine) against the frame before, and whether the
inserted person got a track, and how many frames after the insert it was confirmed (``detector.full_every`` 5 and
``tracker.min_hits`` 3 with the offline defaults). An analysis of a known failure, not a bench row (README, "Fit on").
"""
from __future__ import annotations

import argparse
import json

import numpy as np

#: seconds before the inset appears; clip length
ENTER_S, SECONDS = 2.0, 5.0
SHARES = (0.35, 0.5)


def case_row(case, enter: int, base: dict) -> dict:
    """The pipeline over one insert case: cuts near the insert, the host face across it, the newcomer's track."""
    from streamfiqa.eval.tracking import observe_clip
    from streamfiqa.track.matching import iou_matrix

    frames: dict = {}
    newcomer: dict = {}  # the inserted person's confirmed tracks → the first frame each was confirmed on

    def observe(sid, sf, assignments, confirmed) -> None:
        frames[sf.frame.index] = (bool(sf.cut), sf.faces.boxes.copy(),
                                  None if sf.embeddings is None else sf.embeddings.copy())
        for tid, d in assignments:
            if tid in confirmed and case.person_of(sf.frame.index, sf.faces.boxes[d]) != case.person:
                newcomer.setdefault(tid, sf.frame.index)

    observe_clip(str(case.path), observe, ["selection.second_look=null", "quality.face_measures=false"], base)
    cut = any(frames.get(k, (False,))[0] for k in (enter - 1, enter, enter + 1))
    iou = cos = float("nan")
    if enter - 1 in frames and enter in frames:
        (_, pb, pe), (_, boxes, emb) = frames[enter - 1], frames[enter]
        if len(pb) and len(boxes):
            ov = iou_matrix(pb, boxes)
            k, j = np.unravel_index(int(np.argmax(ov)), ov.shape)
            iou = float(ov[k, j])
            if pe is not None and emb is not None:
                cos = float(pe[k] @ emb[j])
    return {"case": case.name, "cut_at_insert": cut, "host_iou": round(iou, 3), "host_cos": round(cos, 3),
            "other_cuts": sum(c for k, (c, *_) in frames.items() if abs(k - enter) > 1),
            "newcomer_tracked": bool(newcomer),
            "newcomer_frames_late": min(newcomer.values()) - enter if newcomer else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.inserts", description=__doc__.split("\n")[0])
    p.add_argument("--half", default="dev", choices=("dev", "test"))
    p.add_argument("--pairs", type=int, default=12, help="pairs of clips (two insets each)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    from pipelines.offline import DEFAULTS
    from streamfiqa.eval.videocases import case_folder, make_paste
    from streamfiqa.eval.videoset import read_video_set

    clips = [c for c in read_video_set().half(args.half, 0) if c.single_person and not c.cuts]
    order = [clips[i] for i in np.random.default_rng(args.seed).permutation(len(clips))]
    pairs = [(a, b) for a, b in zip(order, order[1:] + order[:1]) if a.person != b.person][:args.pairs]
    rows = []
    kept = case_folder(clips, f"inserts-seed{args.seed}")  # made once, the same files for every run
    for share in SHARES:
        folder = kept / f"share{int(share * 100)}"
        folder.mkdir(exist_ok=True)
        for a, b in pairs:
            case = make_paste(a, b, folder, SECONDS, share, ENTER_S)
            row = {"share": share, **case_row(case, int(round(ENTER_S * case.fps)), DEFAULTS)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    cut = [r for r in rows if r["cut_at_insert"]]
    print(json.dumps({"half": args.half, "cases": len(rows), "cut_at_insert": len(cut),
                      "host_cos_when_cut": sorted(r["host_cos"] for r in cut),
                      "host_iou_when_cut": sorted(r["host_iou"] for r in cut),
                      "other_cuts": sum(r["other_cuts"] for r in rows),
                      "newcomer_tracked": sum(r["newcomer_tracked"] for r in rows),
                      "newcomer_frames_late": sorted(r["newcomer_frames_late"] for r in rows if r["newcomer_tracked"])}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
