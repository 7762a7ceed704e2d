"""Faces cut by the frame's edge: how much worse recognisers match them, by the share of the face the frame fills.

    python -m bench.edges --half dev     # ≈ 8 min on 2 cores; prints JSON lines

On every single-person clip without cuts of one half of ../shared's talking clips, 16 faces (every 12th frame, the
largest face) are detected whole, then again in the same frame ended inside the face — at its right side or its
bottom, 3–30 % of the box in, as a camera's edge cuts a person leaning out of view — re-detected and aligned as the
pipeline does. Each cut face's utility under three recognisers (its cosine to the unit mean of the person's whole
faces, minus the whole faces' median) is reported against its ``in_frame`` (the share of the aligned face region the
frame fills): the analysis ``quality.min_in_frame`` was chosen from (README, "What each threshold was fit on"); not
a bench row.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

SIDES, SHARES = ("right", "bottom"), (0.03, 0.06, 0.1, 0.15, 0.2, 0.3)
BINS = ((1.0, 1.01), (0.99, 1.0), (0.97, 0.99), (0.94, 0.97), (0.9, 0.94), (0.85, 0.9), (0.75, 0.85), (0.5, 0.75))


def cut_at(image: np.ndarray, box: np.ndarray, side: str, share: float) -> np.ndarray:
    """``image`` ended ``share`` of ``box``'s width (``right``) or height (``bottom``) inside the box."""
    if side == "right":
        return np.ascontiguousarray(image[:, : int(round(box[2] - share * (box[2] - box[0])))])
    return np.ascontiguousarray(image[: int(round(box[3] - share * (box[3] - box[1])))])


def clip_rows(path, det, aligner, frs: dict, faces: int = 16, every: int = 12) -> list[dict]:
    """One row per cut face of the clip at ``path``: side, share, whether it was found, ``in_frame`` and each
    recogniser's utility loss."""
    import av

    from streamfiqa.track.matching import iou_matrix
    from streamfiqa.types import FACE_REGION

    whole, cut = [], []
    with av.open(str(path)) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if len(whole) >= faces:
                break
            if k % every:
                continue
            image = frame.to_ndarray(format="bgr24")
            found = det.detect(image)
            if not len(found):
                continue
            one = found[np.array([int(np.argmax(found.sizes))])]
            whole.append(aligner.align(image, one).aligned[0])
            for side in SIDES:
                for share in SHARES:
                    part = cut_at(image, one.boxes[0], side, share)
                    again = det.detect(part)
                    overlap = iou_matrix(one.boxes[:, :4], again.boxes[:, :4])[0] if len(again) else np.zeros(0)
                    if not len(overlap) or overlap.max() < 0.3:
                        cut.append({"side": side, "share": share, "found": False})
                        continue
                    crops = aligner.align(part, again[np.array([int(np.argmax(overlap))])])
                    cut.append({"side": side, "share": share, "found": True, "crop": crops.aligned[0],
                                "in_frame": float(crops.valid[0][FACE_REGION].mean())})
    if len(whole) < 8:
        return []
    faces_ = np.stack(whole)
    ref = {}
    for name, fr in frs.items():
        emb = fr.embed(faces_)
        centre = emb.mean(0) / np.linalg.norm(emb.mean(0))
        ref[name] = (centre, float(np.median(emb @ centre)))
    for row in cut:
        crop = row.pop("crop", None)
        if crop is not None:
            for name, fr in frs.items():
                row[name] = round(float(fr.embed(crop[None])[0] @ ref[name][0]) - ref[name][1], 4)
    return cut


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.edges", description=__doc__.split("\n")[0])
    p.add_argument("--half", default="dev", choices=("dev", "test"))
    args = p.parse_args(argv)
    from streamfiqa.align import Aligner
    from streamfiqa.detect import create_detector
    from streamfiqa.eval.videoset import read_video_set
    from streamfiqa.models.fr import create_fr

    clips = [c for c in read_video_set().half(args.half, 0) if c.single_person and not c.cuts]
    det, aligner = create_detector("retinaface"), Aligner()
    frs = {name: create_fr(name) for name in ("buffalo_s", "sface", "facenet")}
    rows = []
    for clip in clips:
        rows += [{"clip": clip.name, **r} for r in clip_rows(clip.path, det, aligner, frs)]
    found = [r for r in rows if r["found"]]
    print(json.dumps({"half": args.half, "clips": len({r["clip"] for r in rows}), "cut_faces": len(rows),
                      "found": len(found)}))
    for lo, hi in BINS:
        inside = [r for r in found if lo <= r["in_frame"] < hi]
        if inside:
            print(json.dumps({"in_frame": [lo, min(hi, 1.0)], "faces": len(inside),
                              **{n: round(float(np.median([r[n] for r in inside])), 3) for n in frs}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
