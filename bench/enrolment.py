"""Enrolment on real clips: how recognisable are the crops ``--pipeline enroll`` enrols?

    python -m bench.enrolment --half dev --windows 0 3 5 8    # ≈ 6 min on 2 cores, + ≈ 1 min a window
    python -m bench.enrolment --half dev --thresholds 0.45 0.36  # the same for enroll.threshold

For each single-person clip of one half of ../shared's talking clips, the offline pipeline runs once and every face
of the clip's person is embedded by ``buffalo_s`` and SFace; a face's utility is its mean cosine to the person's
faces at least 2 s away (as in the video protocol, :mod:`streamfiqa.eval.video`). Then the enrol pipeline runs on
the clip for each ``enroll.window_s`` given, and each enrolled crop is placed among the person's faces by its own
utility (a percentile: 50 = a random face of the clip). Prints one JSON line per window: clips enrolled, when the
last enrolled crop was seen (median, stream seconds), the mean percentile of the enrolled crops and of the first
(best-ranked) one. An analysis for choosing enrolment settings on the development half, not a bench row.
"""
from __future__ import annotations

import argparse
import json

import numpy as np


def subject_faces(clip, frs: dict) -> dict | None:
    """The clip's person's faces from an offline run: their times and, per recogniser, embeddings and utilities."""
    from pipelines.offline import DEFAULTS
    from streamfiqa.eval.video import embed, label_persons, run_clip, utilities

    run = run_clip(clip.path, None, DEFAULTS, clip.name)
    if not len(run):
        return None
    embed(run, frs)
    label_persons(run, clip, "buffalo_s")
    mine = run.person == clip.person
    return {"pts": run.pts[mine], **{name: (run.fr[name][mine], utilities([run], name)[0][mine]) for name in frs}}


def enrolled(path, overrides: list[str]) -> list:
    """The candidates the enrol pipeline enrols from ``path`` (best-ranked first)."""
    from pipelines.enroll import DEFAULTS
    from streamfiqa.eval.tracking import observe_clip

    events = observe_clip(str(path), lambda *_: None, ["publish.endpoint=null", *overrides], DEFAULTS, raw=True)
    return [e.candidate for e in events if e.kind == "enrolled"]


def percentiles(cands: list, faces: dict, fr_name: str, fr) -> list[float]:
    """Each enrolled crop's utility as a percentile of the person's faces' utilities."""
    from streamfiqa.eval.video import GAP_S

    emb, u = faces[fr_name]
    u = u[np.isfinite(u)]
    out = []
    for c, e in zip(cands, fr.embed(np.stack([c.aligned for c in cands]))):
        far = np.abs(faces["pts"] - c.pts) >= GAP_S
        if far.any():
            out.append(100 * float(np.mean(u < float((emb[far] @ e).mean()))))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.enrolment", description=__doc__.split("\n")[0])
    p.add_argument("--half", default="dev", choices=("dev", "test"))
    p.add_argument("--windows", type=float, nargs="+", default=[5.0], help="enroll.window_s values to measure")
    p.add_argument("--thresholds", type=float, nargs="+", default=[None],
                   help="enroll.threshold values to measure (default: the pipeline's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="an override of the enrol pipeline (repeatable)")
    args = p.parse_args(argv)
    from streamfiqa.eval.video import recognisers
    from streamfiqa.eval.videoset import read_video_set

    frs = recognisers(["buffalo_s", "sface"])
    clips = [c for c in read_video_set().half(args.half, 0) if c.single_person]
    faces = {c.name: f for c in clips if (f := subject_faces(c, frs)) is not None}
    for threshold, window in ((t, w) for t in args.thresholds for w in args.windows):
        rows, last = {n: ([], []) for n in frs}, []
        sets = [*args.overrides, f"enroll.window_s={window}"] + ([f"enroll.threshold={threshold}"] if threshold is not None else [])
        for clip in clips:
            cands = enrolled(clip.path, sets) if clip.name in faces else []
            if not cands:
                continue
            last.append(max(c.pts for c in cands))
            for name, fr in frs.items():
                pcs = percentiles(cands, faces[clip.name], name, fr)
                if pcs:
                    rows[name][0].append(float(np.mean(pcs)))
                    rows[name][1].append(pcs[0])
        print(json.dumps({"half": args.half, "window_s": window, "threshold": threshold, "overrides": args.overrides,
                          "clips": len(faces),
                          "enrolled": len(last), "last_crop_s_median": round(float(np.median(last)), 2) if last else None,
                          **{f"{n}_mean_percentile": round(float(np.mean(a)), 1) for n, (a, _) in rows.items() if a},
                          **{f"{n}_first_percentile": round(float(np.mean(b)), 1) for n, (_, b) in rows.items() if b}}),
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
