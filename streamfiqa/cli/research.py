"""The research toolkit's commands: ``degrade``, ``eval``, ``distil``, ``quantize``."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from streamfiqa.cli.common import add_scorer_options, at_least, scorer_args, setup_logging

log = logging.getLogger("streamfiqa")


def cmd_degrade(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="streamfiqa degrade",
        description="Degradation ranking check: each kind is applied to the whole photo before detection (as a "
                    "camera produces it); prints, per kind, the fraction of faces whose clean crop outscores it.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="face photos (default: the held-out half of "
                   "../shared celeba_ids, else the insightface wheel's photos)")
    p.add_argument("--split", default="test", choices=("test", "train", "all"),
                   help="identity half of the default set (default: test, held out from training)")
    p.add_argument("--max-photos", type=at_least(0), default=400, help="at most this many photos (0 = all)")
    add_scorer_options(p, "fiqa_fast")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    import numpy as np

    from streamfiqa.eval.degrade import PHOTO_KINDS
    from streamfiqa.eval.facedata import celeba_ids_dir, load_crops, read_identities
    from streamfiqa.quality.scorers import create_scorer
    from streamfiqa.eval.synth import default_face_paths
    from streamfiqa.io.media import image_files

    if args.paths:
        paths = [str(f) for f in image_files(args.paths)]
    elif celeba_ids_dir().is_dir():
        paths = read_identities(celeba_ids_dir()).split(args.split).paths
    else:
        paths = [str(f) for f in image_files(default_face_paths())]
    paths = paths[: args.max_photos] if args.max_photos else paths
    scorer = create_scorer(args.scorer, **scorer_args(args.arg))
    clean = load_crops(paths)
    keep = clean.found
    base = np.asarray(scorer.score(clean.aligned[keep]), np.float64)
    table = {}
    for kind in PHOTO_KINDS:
        deg = load_crops([q for q, k in zip(paths, keep) if k], protocol=kind)
        table[kind] = round(float(np.mean(base > np.asarray(scorer.score(deg.aligned), np.float64))), 4)
    print(json.dumps({"scorer": args.scorer, "faces": int(keep.sum()), "clean_above_degraded": table,
                      "bar_0.95_met": all(v >= 0.95 for v in table.values())}))
    return 0


def cmd_eval(argv: list[str]) -> int:
    from streamfiqa.eval.facedata import celeba_ids_dir

    p = argparse.ArgumentParser(
        prog="streamfiqa eval",
        description="EDC and pAUC (normalised to random discard) of scorers × FR models × protocols on an "
                    "identity-labelled folder; writes OUT/edc.json, OUT/edc.png and OUT/calibration.json. With "
                    "--videos: the video protocol (how good the crop the pipeline publishes for each track of real "
                    "clips is, under several recognisers); writes OUT/video.json and OUT/plots/.")
    p.add_argument("--ids", default=str(celeba_ids_dir()), help="identity folder: identities.csv or a sub-folder "
                   "per person (default: ../shared celeba_ids)")
    p.add_argument("--split", default="test", choices=("test", "train", "all"),
                   help="identity half to evaluate (default: test, the half distil does not train on)")
    p.add_argument("--protocol", action="append", default=None,
                   help="clean, mixed (half the photos degraded before detection, random kind and strength), or "
                        "one kind (blur, downscale, noise, jpeg, dark, occlusion); repeatable (default: clean, mixed)")
    p.add_argument("--fr", action="append", default=None, metavar="NAME[:key=value;...]",
                   help="recogniser(s) for the comparison scores (default: mobilefacenet (../shared), facenet)")
    p.add_argument("--fmr", type=float, default=1e-3)
    p.add_argument("--impostors", type=at_least(1), default=50_000, help="seeded impostor pairs")
    p.add_argument("--max-photos", type=at_least(0), default=0, help="evaluate on the first N photos only (0 = all)")
    p.add_argument("--calibrate-discard", type=float, default=0.1,
                   help="calibration: the threshold reaching the best FNMR within this discard fraction")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="eval_out", help="output folder")
    p.add_argument("--scorer", action="append", default=None, metavar="NAME[:key=value;...]",
                   help="scorer(s) (default: fiqa_fast, fiqa_heavy, crop_iqa, grafiqs:fr=mobilefacenet)")
    p.add_argument("--videos", metavar="DIR", help="the video protocol on the clips of DIR (a MANIFEST.tsv; e.g. "
                   "../shared/data/videos/talking)")
    p.add_argument("--half", default="test", choices=("dev", "test", "all"),
                   help="--videos: which half of the clips (split by person, seeded; default test, the half "
                   "nothing was fit on; all: every clip, e.g. of a folder of your own)")
    p.add_argument("--cases", type=at_least(0), default=6, help="--videos: joined, jump-cut and pasted cases made from the "
                   "half's clips, of each kind (default 6; 0: none)")
    p.add_argument("--pipeline", default="offline", help="--videos: the pipeline whose defaults run the clips")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="--videos: a config override of the pipeline (as for a run)")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    if args.videos:
        return _eval_videos(args)
    from streamfiqa.eval.edc import identity_eval, plot_edc

    frs = args.fr or ["mobilefacenet", "facenet"]
    scorers = args.scorer or ["fiqa_fast", "fiqa_heavy", "crop_iqa", "grafiqs:fr=mobilefacenet"]
    result = identity_eval(args.ids, args.split, args.protocol or ["clean", "mixed"], frs, scorers, args.fmr,
                           args.impostors, args.seed, args.max_photos, args.calibrate_discard,
                           progress=sys.stderr.isatty())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for row in result["rows"]:
        print(json.dumps(row))
    (out / "edc.json").write_text(json.dumps(result, indent=1))
    (out / "calibration.json").write_text(json.dumps({"meta": result["meta"], "calibration": result["calibration"]},
                                                     indent=1))
    first = {k.rsplit("/", 1)[1]: v for k, v in result["curves"].items() if k.startswith(result["rows"][0]["protocol"]
                                                                                          + "/" + result["rows"][0]["fr"] + "/")}
    plot_edc(first, out / "edc.png", title=f"{result['rows'][0]['protocol']} / {result['rows'][0]['fr']}")
    print(json.dumps({**result["meta"], "json": str(out / "edc.json"), "calibration": str(out / "calibration.json")}))
    return 0


def _eval_videos(args) -> int:
    from pipelines import PIPELINES
    from streamfiqa.config import ConfigError, load_config
    from streamfiqa.eval.video import check_recognisers, evaluate_videos, recognisers
    from streamfiqa.eval.videocases import case_folder, make_cases
    from streamfiqa.eval.videoset import read_video_set

    if args.pipeline not in PIPELINES:
        raise ValueError(f"--pipeline: expected one of {', '.join(PIPELINES)}, found {args.pipeline!r}")
    base = PIPELINES[args.pipeline].DEFAULTS
    try:
        load_config(None, args.overrides, base=base)  # a mistake shows before any clip runs
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    every = read_video_set(args.videos)
    clips = list(every.half(args.half, args.seed))
    if not clips:  # a folder of one person: the seeded split by person leaves one half empty
        persons = len({c.person for c in every})
        raise ValueError(f"--videos {args.videos}: expected clips in its {args.half} half (split by person, seed "
                         f"{args.seed}), found none of its {len(every)} clip(s) of {persons} person(s); --half all "
                         "evaluates every clip")
    if len(clips) < len(every):
        log.info("video protocol: the %s half, %d of the %d clips (--half all: every clip)", args.half, len(clips),
                 len(every))
    names = args.fr or ["buffalo_s", "mobilefacenet", "sface"]
    check_recognisers(names)  # said before any case is made (a minute on a fresh machine)
    frs = recognisers(names)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = (make_cases(clips, case_folder(clips, f"cases-seed{args.seed}-n{args.cases}"), args.cases, args.seed)
             if args.cases else [])
    result = evaluate_videos(clips, cases, frs, args.overrides, base, out,
                             progress=lambda name: log.info("video protocol: %s done", name))
    result["meta"] = {"videos": args.videos, "half": args.half, "seed": args.seed, "cases_per_kind": args.cases,
                      "pipeline": args.pipeline, "overrides": args.overrides}
    (out / "video.json").write_text(json.dumps(result, indent=1))
    for name, summary in result["summary"].items():
        print(json.dumps({"recogniser": name, **summary, "gallery_edc": result["gallery_edc"][name]}))
    print(json.dumps({"cuts": result["cuts"], "clips": {"half": args.half, "evaluated": len(clips),
                                                        "in_folder": len(every), "cases": len(cases)},
                      "json": str(out / "video.json"), "plots": str(out / "plots")}))
    return 0


def cmd_distil(argv: list[str]) -> int:
    from streamfiqa.eval.facedata import celeba_ids_dir

    p = argparse.ArgumentParser(
        prog="streamfiqa distil",
        description="Train a fast quality student (FR backbone + MLP head) to regress FR-utility labels or a "
                    "teacher scorer, on identity folders, image folders or videos; writes OUT/student.pt and "
                    "OUT/student.onnx (use with --set quality.scorer=student --set quality.scorer_args.weights=…).")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="identity folder, image folders or videos (default: ../shared celeba_ids)")
    p.add_argument("--out", required=True, help="output folder (checkpoints, ONNX, summary.json)")
    p.add_argument("--arch", default="mfn80", help="mfn80 (CPU fast tier), mfn112, iresnet18 (eDifFIQA(S) layout)")
    p.add_argument("--labels", default="utility", help="utility (identity folders), consistency, or scorer:NAME")
    p.add_argument("--teacher-fr", default="mobilefacenet", help="FR model for labels and the embedding loss")
    p.add_argument("--teacher-fr-arg", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--label-fr", action="append", default=[], metavar="NAME[:KEY=VALUE;...]",
                   help="utility labels: a further recogniser whose utility is averaged with the teacher's "
                        "(repeatable; e.g. --label-fr buffalo_s --label-fr sface)")
    p.add_argument("--label-norm", action="append", default=[], metavar="NAME[:KEY=VALUE;...]",
                   help="utility labels: a recogniser whose log feature norm (its embedding before normalisation) is "
                        "averaged in (repeatable; e.g. --label-norm buffalo_s)")
    p.add_argument("--init", default=None, help="FR weights to start the backbone from (default: the teacher's "
                   "MobileFaceNet for mfn* archs when it is in ../shared)")
    p.add_argument("--variants", type=at_least(0), default=4, help="degraded copies per photo")
    p.add_argument("--margin", type=float, default=0.3, help="utility labels: a degraded copy scores at least "
                   "margin × strength below its clean original")
    p.add_argument("--epochs", type=at_least(1), default=6)
    p.add_argument("--embed-weight", type=float, default=1.0, help="weight of the embedding loss (1 − cos to the "
                   "teacher's embedding), which keeps the student a recogniser for the tracker and the selection")
    p.add_argument("--batch-size", type=at_least(1), default=64)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--split", default="train", choices=("train", "test", "all"), help="identity half to train on")
    p.add_argument("--max-photos", type=at_least(0), default=0)
    p.add_argument("--every", type=at_least(1), default=10, help="videos: one frame in this many")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt (and OUT/training_set.npz, when "
                   "built from the same inputs and labelling options)")
    add_scorer_options(p, "")
    args = p.parse_args(argv)
    setup_logging(args.log_level if args.log_level != "warning" else "info")
    from streamfiqa.config import parse_spec
    from streamfiqa.eval.edc import with_shared_weights
    from streamfiqa.train.distil import DistilConfig, distil

    fr_args = with_shared_weights(args.teacher_fr, scorer_args(args.teacher_fr_arg))
    init = args.init
    if init is None and args.arch.startswith("mfn") and args.teacher_fr == "mobilefacenet":
        init = fr_args["weights"]
    label_frs = [(name, with_shared_weights(name, largs)) for _, name, largs in map(parse_spec, args.label_fr)]
    label_norms = [(name, with_shared_weights(name, largs)) for _, name, largs in map(parse_spec, args.label_norm)]
    cfg = DistilConfig(arch=args.arch, labels=args.labels, teacher_fr=args.teacher_fr, teacher_fr_args=fr_args,
                       label_frs=label_frs, label_norms=label_norms, init=init, variants=args.variants,
                       margin=args.margin, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       embed_weight=args.embed_weight,
                       split=args.split, seed=args.seed, max_photos=args.max_photos, every=args.every)
    summary = distil(args.inputs or [str(celeba_ids_dir())], args.out, cfg, resume=args.resume,
                     progress=sys.stderr.isatty(), scorer_args=scorer_args(args.arg))
    print(json.dumps(summary))
    return 0


def cmd_quantize(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="streamfiqa quantize",
        description="Quantise a quality student to INT8 for the CPU (ONNX Runtime, calibrated on real aligned faces, "
                    "clean and degraded); use it with --set quality.scorer_args.precision=int8.")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--weights", help="a distil checkpoint (student.pt)")
    who.add_argument("--student", default="fiqa_fast", help="an embedded student: fiqa_fast (default), fiqa_heavy")
    p.add_argument("--calibration", default=None, help="identity folder to calibrate on (default: ../shared "
                   "celeba_ids)")
    p.add_argument("--split", default="train", choices=("train", "test", "all"),
                   help="identity half to calibrate on (default: train, the half distil trains on)")
    p.add_argument("--photos", type=at_least(1), default=400, help="calibration photos: half clean, half degraded")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="INT8 .onnx to write (default: beside a --weights checkpoint, "
                   "<stem>.int8.onnx, where precision int8 looks for it; for an embedded --student, ./<name>.int8.onnx: "
                   "the shipped model is never replaced)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    from streamfiqa.models.int8 import int8_path
    from streamfiqa.models.student import WEIGHTS_DIR, embedded_path
    from streamfiqa.train.quantize import calibration_crops, quantize_student

    weights = Path(args.weights) if args.weights else embedded_path(args.student)
    if not weights.is_file():
        raise FileNotFoundError(f"quantize: expected --weights to name a distil checkpoint, found nothing at {weights}")
    out = Path(args.out) if args.out else (int8_path(weights) if args.weights else Path(int8_path(weights).name))
    if out.resolve().parent == WEIGHTS_DIR.resolve():
        raise ValueError(f"quantize: {out} is a model the package ships; write elsewhere with --out")
    if out.exists() and not args.force:
        raise FileExistsError(f"quantize: {out} exists; choose another --out, or --force to replace it")
    crops = calibration_crops(args.calibration, args.photos, args.split, args.seed)
    what = (f"{args.calibration or 'celeba_ids'} {args.split} half (seed {args.seed}): first {args.photos} photos, "
            f"half clean, half mixed (seed {args.seed + 1})")
    out = quantize_student(weights, crops, out, calibration=what)
    print(json.dumps({"weights": str(weights), "int8": str(out), "calibration": what}))
    return 0
