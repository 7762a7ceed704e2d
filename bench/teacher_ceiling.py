"""How far a perfect copy of one recogniser's utility goes when another recogniser is measured (issue #19).

    python -m bench.teacher_ceiling [--split train] [--scorer fiqa_fast]     # ≈ 3 min on 2 cores; JSON lines

A student learns a face's **utility** by its teacher: ``streamfiqa distil``'s label, the mean cosine of the face's
embedding to the other clean photos of its person, a degraded copy's capped below its clean original's
(``utility_labels`` with the fast recipe's margin). Here each photo's label is computed as ``distil`` computes it, by
each of MobileFaceNet (the shipped students' teacher), ``buffalo_s`` and SFace, alone and two at a time
(``several_teachers``, as ``--label-fr`` does), and used as the photo's quality in the EDC of every recogniser
(normalised pAUC, as ``streamfiqa eval``: FMR 1e-3, pair quality the lower of the two, 1.0 = random discard). Off
the diagonal is the ceiling of distillation from recognisers that disagree: what a student that predicted its
teachers' labels without error would reach with a recogniser that taught it nothing. ``--scorer`` rows show a real
scorer on the same photos beside them. On the ``train`` half (the default: the identities the students learnt from,
so their rows there are in-sample) nothing of the held-out half is touched. An analysis, not a bench row (README,
"Recognisers that taught nothing").
"""
from __future__ import annotations

import argparse
import itertools
import json

import numpy as np

RECOGNISERS = ("mobilefacenet", "buffalo_s", "sface")


def labels(ids: np.ndarray, clean: dict, degraded: dict, kinds: list, strengths: np.ndarray) -> dict:
    """Per photo and recogniser, ``distil``'s utility label of the photo as the protocol shows it: ``clean`` and
    ``degraded`` are each recogniser's embeddings of the clean photos and of the protocol's crops, ``kinds`` and
    ``strengths`` the protocol's plan (a photo it left clean is labelled as a clean one)."""
    from streamfiqa.train.distil import DistilConfig, TrainingSet, utility_labels

    n = len(ids)
    deg = np.flatnonzero([k != "clean" for k in kinds])
    ts = TrainingSet(np.zeros(0), np.concatenate([np.arange(n), deg]), np.concatenate([ids, ids[deg]]),
                     ["clean"] * n + [kinds[i] for i in deg],
                     np.concatenate([np.zeros(n, np.float32), np.asarray(strengths, np.float32)[deg]]))
    row = np.arange(n)
    row[deg] = n + np.arange(len(deg))  # a degraded photo's own row
    out = {}
    for name in clean:
        lab = utility_labels(np.concatenate([clean[name], degraded[name][deg]]), ts, DistilConfig().margin)[row]
        if not np.isfinite(lab).all():  # a person with one photo: nothing vouches for it, it goes first
            lab = np.where(np.isfinite(lab), lab, np.nanmin(lab))
        out[name] = lab.astype(np.float64)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.teacher_ceiling", description=__doc__.split("\n")[0])
    p.add_argument("--split", default="train", choices=("train", "test"))
    p.add_argument("--scorer", action="append", default=None, help="a scorer to measure beside (default fiqa_fast)")
    args = p.parse_args(argv)
    from streamfiqa.eval.edc import edc_table, with_shared_weights
    from streamfiqa.eval.facedata import celeba_ids_dir, load_crops, pairs, read_identities
    from streamfiqa.models.fr import create_fr
    from streamfiqa.quality.scorers import create_scorer
    from streamfiqa.train.distil import several_teachers

    ids = read_identities(celeba_ids_dir()).split(args.split, 0)
    a, b, genuine = pairs(ids.ids, 50_000, 0)
    frs = {n: create_fr(n, **with_shared_weights(n, {})) for n in RECOGNISERS}
    scorers = {s: create_scorer(s) for s in (args.scorer or ["fiqa_fast"])}
    clean = load_crops(ids.paths, protocol="clean", seed=0)
    clean_emb = {n: m.embed(clean.aligned) for n, m in frs.items()}
    for protocol in ("clean", "mixed"):
        crops = clean if protocol == "clean" else load_crops(ids.paths, protocol=protocol, seed=0)
        emb = clean_emb if protocol == "clean" else {n: m.embed(crops.aligned) for n, m in frs.items()}
        util = labels(ids.ids, clean_emb, emb, crops.kinds, crops.strengths)
        qualities = {f"utility:{n}": u for n, u in util.items()}
        for x, y in itertools.combinations(RECOGNISERS, 2):
            qualities[f"utility:{x}+{y}"] = several_teachers([util[x], util[y]]).astype(np.float64)
        qualities.update({s: np.asarray(m.score(crops.aligned), np.float64) for s, m in scorers.items()})
        for fr in RECOGNISERS:
            sim = (emb[fr][a] * emb[fr][b]).sum(1)
            for quality, curve in edc_table(sim, genuine, a, b, qualities).items():
                print(json.dumps({"split": args.split, "protocol": protocol, "fr": fr, "quality": quality,
                                  "norm_0.2": round(float(curve["norm_0.2"]), 3),
                                  "norm_0.3": round(float(curve["norm_0.3"]), 3)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
