"""Faces from real video as training identities: an identity folder for ``streamfiqa distil``.

    python -m bench.video_identities OUT [--per-clip 30]        # ≈ 1 min on 2 cores
    streamfiqa distil OUT --split all --arch mfn80 --out STUDENT [--label-fr buffalo_s]

Writes ``OUT/identities.csv`` and ``OUT/images/``: the training half of ``celeba_ids`` (the identities ``distil``
trains on by default, linked) and ``--per-clip`` evenly spaced frames of each single-person clip of the development
half of ../shared's talking clips, each clip's person an identity of its own. ``--split all`` then trains on exactly
these; the held-out stills (the test half) and the test half of the clips stay unseen. An experiment for issue #19
(README, "Recognisers that taught nothing"), not a bench row.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.video_identities", description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--per-clip", type=int, default=30, help="frames of each clip (default 30)")
    args = p.parse_args(argv)
    import av
    import cv2

    from streamfiqa.eval.facedata import celeba_ids_dir, read_identities
    from streamfiqa.eval.videoset import read_video_set
    from streamfiqa.io.sources import turn_upright

    images = args.out / "images"
    images.mkdir(parents=True, exist_ok=True)
    stills = read_identities(celeba_ids_dir()).split("train")
    rows = []
    for path, person in zip(stills.paths, stills.ids.tolist()):
        link = images / Path(path).name
        if not link.exists():
            link.symlink_to(Path(path).resolve())
        rows.append((link.name, f"still_{person}"))
    for clip in read_video_set().half("dev", 0):
        if not clip.single_person:
            continue
        with av.open(str(clip.path)) as c:
            frames = [turn_upright(f.to_ndarray(format="bgr24"), f) for f in c.decode(video=0)]
        for k in np.linspace(0, len(frames) - 1, min(args.per_clip, len(frames))).round().astype(int):
            name = f"video_{Path(clip.name).stem}_{k:05d}.jpg"
            cv2.imwrite(str(images / name), frames[k], [cv2.IMWRITE_JPEG_QUALITY, 95])
            rows.append((name, f"video_{clip.person}"))
    with open(args.out / "identities.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("file", "identity"), *rows])
    print(f"{len(rows)} photos of {len({r[1] for r in rows})} identities in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
