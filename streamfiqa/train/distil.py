"""Distillation: train a fast quality student to regress a teacher (the eDifFIQA recipe, as a product feature).

Inputs: an identity folder (``identities.csv`` or one sub-folder per person), plain image folders, or
videos (faces detected every ``--every`` frames: the student adapts to a user's own cameras).

Labels (``--labels``):

* ``utility`` (identity folders): how well an FR model matches the face — the mean cosine of its embedding
  to the *clean* photos of the same person (its own photo excluded). A degraded copy's label is capped at
  its clean original's utility minus ``margin × strength``: a copy carries less of the face than its
  source, whatever a noisy similarity says, so the student learns that degradation never helps. With
  ``--label-fr`` (repeatable) the utility of each further recogniser is computed the same way, every
  recogniser's labels are standardised, averaged, and put back on the teacher's scale
  (:func:`several_teachers`): the student learns what makes a face recognisable to several networks, not
  what one of them likes; the embedding loss stays with ``--teacher-fr``. With ``--label-norm`` (repeatable) the
  log of a recogniser's feature norm (its embedding before normalisation) is averaged in the same way: a
  margin-trained recogniser's norm grows with the face's quality (MagFace), a property of the photo alone, which
  a student can learn for people it has never seen, where a utility is relative to the person's other photos
  (README, "Recognisers that taught nothing").
* ``consistency`` (any faces): cosine of the degraded copy's embedding to its clean original's (1 for
  the clean crop minus the flip disagreement), i.e. how much recognition survives the degradation.
* ``scorer:NAME`` (any faces): a heavy scorer's output (e.g. ``scorer:diffiqa`` with its ``--arg``s).

Every photo appears clean and as ``--variants`` degraded copies (seeded random kind and strength,
applied to the whole photo before detection). Loss: MSE on the standardised label plus
``--embed-weight × (1 − cos)`` between the student's embedding and the teacher FR's, which keeps the
backbone a recogniser (the tracker uses its embedding). The validation split is by identity.
Checkpoints after every epoch (``last.pt`` with the optimiser; ``--resume`` continues), the best by
validation Spearman as ``student.pt``, and ``student.onnx``. The labelled training set is kept as
``training_set.npz``: ``--resume`` with the same inputs and labelling options reads it instead of detecting and
labelling again.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from streamfiqa.backends.export import export_onnx
from streamfiqa.eval.facedata import IdentitySet, load_crops, protocol_plan, read_identities
from streamfiqa.io.media import is_image
from streamfiqa.models.common import load_checkpoint
from streamfiqa.models.fr import create_fr
from streamfiqa.models.student import Student, init_from_teacher, save_student
from streamfiqa.models.student import _QualityOnly, load_student
from streamfiqa.quality.scorers import create_scorer

log = logging.getLogger(__name__)


@dataclass
class DistilConfig:
    """Options of :func:`distil` (the CLI's flags)."""

    arch: str = "mfn80"
    labels: str = "utility"
    teacher_fr: str = "mobilefacenet"
    teacher_fr_args: dict = field(default_factory=dict)
    label_frs: list = field(default_factory=list)  # (name, args) of further recognisers whose utility is averaged in
    label_norms: list = field(default_factory=list)  # (name, args) of recognisers whose log feature norm is averaged in
    init: str | None = None          # teacher FR weights to initialise the backbone from (same family)
    variants: int = 4
    margin: float = 0.3
    epochs: int = 4
    batch_size: int = 64
    lr: float = 3e-4
    embed_weight: float = 1.0
    val_fraction: float = 0.1
    split: str = "train"             # identity half to train on (the other is held out for eval)
    seed: int = 0
    max_photos: int = 0
    every: int = 10                  # video sources: one frame in this many
    threads: int = 0

    def __post_init__(self) -> None:
        if not (self.labels in ("utility", "consistency") or self.labels.startswith("scorer:")):
            raise ValueError(f"distil: --labels must be utility, consistency or scorer:NAME, found {self.labels!r}")
        for flag, given in (("--label-fr", self.label_frs), ("--label-norm", self.label_norms)):
            if given and self.labels != "utility":
                raise ValueError(f"distil: {flag} averages into utility labels; it needs --labels utility, found "
                                 f"{self.labels!r}")
        from streamfiqa.models.fr import FR_MODELS

        for name, _ in self.label_frs + self.label_norms:
            FR_MODELS.get(name)  # an unknown name fails now, listing the valid ones, not after the crops are built
        for name in ("variants", "epochs", "batch_size", "every"):
            if getattr(self, name) < (0 if name == "variants" else 1):
                raise ValueError(f"distil: --{name.replace('_', '-')} must be ≥ {0 if name == 'variants' else 1}, "
                                 f"found {getattr(self, name)}")


@dataclass
class TrainingSet:
    """Crops with labels: ``photo`` indexes the source photo, ``ids`` its identity (−1 unknown)."""

    aligned: np.ndarray
    photo: np.ndarray
    ids: np.ndarray
    kinds: list
    strengths: np.ndarray
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    teacher_emb: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))


def collect_photos(inputs: list[str], every: int = 10, max_photos: int = 0, split: str = "train",
                   seed: int = 0) -> tuple[IdentitySet | None, list]:
    """Identity folder → (IdentitySet of ``split``, []); else plain folders / videos → (None, frames or
    paths). Video frames are returned as arrays (faces are found later like photos)."""

    if len(inputs) == 1 and Path(inputs[0]).is_dir():
        try:
            ids = read_identities(inputs[0]).split(split, seed)
            if max_photos:
                ids = ids.subset(np.arange(len(ids)) < max_photos)
            return ids, []
        except ValueError:
            pass
    items: list = []
    for inp in map(Path, inputs):
        if inp.is_dir():
            items += sorted(str(f) for f in inp.rglob("*") if is_image(f))
        elif is_image(inp):
            items.append(str(inp))
        elif inp.is_file():
            import av

            from streamfiqa.io.sources import turn_upright

            with av.open(str(inp)) as c:
                for k, frame in enumerate(c.decode(video=0)):
                    if k % every == 0:
                        items.append(turn_upright(frame.to_ndarray(format="bgr24"), frame))
        else:
            raise FileNotFoundError(f"distil: expected an identity folder, image folders or videos, found nothing "
                                    f"at {inp}")
    if max_photos:
        items = items[:max_photos]
    if not items:
        raise ValueError(f"distil: found no images or video frames in {inputs}")
    return None, items


def build_set(paths: list, ids: np.ndarray, variants: int, seed: int, progress: bool = True) -> TrainingSet:
    """Every photo clean and as ``variants`` degraded copies (seeded kinds and strengths)."""
    import tempfile

    import cv2

    tmp = None
    if paths and not isinstance(paths[0], str):  # video frames: write them once so load_crops reads photos
        tmp = tempfile.TemporaryDirectory(prefix="streamfiqa-distil-")
        names = []
        for k, frame in enumerate(paths):
            names.append(f"{tmp.name}/{k:06d}.png")
            cv2.imwrite(names[-1], frame)
        paths = names
    n = len(paths)
    crops, photo, kinds, strengths = [], [], [], []
    for v in range(variants + 1):
        if v == 0:
            plan = (["clean"] * n, np.zeros(n, np.float32))
        else:
            k, s = protocol_plan(n, "mixed", seed * 1000 + v, fraction=1.0, full_range=True)
            plan = (k, np.clip(s, 0.05, 1.0))
        c = load_crops(paths, protocol="mixed", seed=seed * 1000 + v, progress=progress, plan=plan)
        crops.append(c.aligned)
        photo.append(np.arange(n))
        kinds += c.kinds
        strengths.append(c.strengths)
    if tmp is not None:
        tmp.cleanup()
    return TrainingSet(np.concatenate(crops), np.concatenate(photo), np.tile(np.asarray(ids, np.int64), variants + 1),
                       kinds, np.concatenate(strengths))


def utility_labels(emb: np.ndarray, ts: TrainingSet, margin: float) -> np.ndarray:
    """Mean cosine to the same person's other clean photos, capped for degraded copies (module docstring)."""
    clean = np.array([k == "clean" for k in ts.kinds])
    n_photos = int(ts.photo.max()) + 1
    clean_emb = np.zeros((n_photos, emb.shape[1]), np.float32)
    clean_emb[ts.photo[clean]] = emb[clean]
    photo_id = np.zeros(n_photos, np.int64)
    photo_id[ts.photo] = ts.ids
    labels = np.zeros(len(emb), np.float32)
    for person in np.unique(ts.ids):
        mates = np.flatnonzero(photo_id == person)
        rows = np.flatnonzero(ts.ids == person)
        sim = emb[rows] @ clean_emb[mates].T                      # (rows, mates)
        own = ts.photo[rows][:, None] == mates[None, :]
        count = (~own).sum(1)
        labels[rows] = np.where(count > 0, (sim * ~own).sum(1) / np.maximum(count, 1), np.nan)
    clean_label = np.full(n_photos, np.nan, np.float32)
    clean_label[ts.photo[clean]] = labels[clean]
    cap = clean_label[ts.photo] - margin * ts.strengths
    labels = np.where(clean, labels, np.fmin(labels, cap))
    return labels.astype(np.float32)


def several_teachers(labels: list[np.ndarray]) -> np.ndarray:
    """One label per crop from several recognisers' utilities: each standardised over its finite values, averaged
    (over the recognisers that labelled the crop), and mapped back to the first (the teacher's) mean and spread."""
    first = labels[0][np.isfinite(labels[0])]
    z = []
    for lab in labels:
        ok = lab[np.isfinite(lab)]
        z.append((lab - ok.mean()) / (ok.std() + 1e-6) if len(ok) > 1 else np.full_like(lab, np.nan))
    with np.errstate(invalid="ignore"):
        zs = np.stack(z)
        count = np.isfinite(zs).sum(0)
        mean = np.where(count > 0, np.nansum(zs, 0) / np.maximum(count, 1), np.nan)
    return (mean * (first.std() + 1e-6) + first.mean()).astype(np.float32)


def norm_labels(fr, aligned: np.ndarray) -> np.ndarray:
    """The log of ``fr``'s feature norm per crop (its embedding before normalisation; module docstring).

    Raises:
        ValueError: ``fr`` gives no features before normalisation, or gives them all of one norm.
    """
    if not hasattr(fr, "features"):
        raise ValueError(f"distil: --label-norm needs a recogniser whose embeddings can be read before normalisation; "
                         f"{fr.name} gives only unit-norm ones")
    log_norm = np.log(np.maximum(np.linalg.norm(fr.features(aligned), axis=1), 1e-12)).astype(np.float32)
    if len(log_norm) > 1 and log_norm.std() < 1e-4:
        raise ValueError(f"distil: --label-norm {fr.name}: its features all have the norm {np.exp(log_norm[0]):.4g} "
                         "(normalised inside the network): their norm says nothing about the face")
    return log_norm


def _agree(each: list[np.ndarray]) -> float:
    """Spearman between the first and the last labels where both are finite."""
    both = np.isfinite(each[0]) & np.isfinite(each[-1])
    return spearman(each[0][both], each[-1][both])


def consistency_labels(emb: np.ndarray, flip_emb: np.ndarray, ts: TrainingSet) -> np.ndarray:
    """Cosine of each crop's embedding to its clean original's; the clean crop gets its flip agreement."""
    clean = np.array([k == "clean" for k in ts.kinds])
    ref = np.zeros((int(ts.photo.max()) + 1, emb.shape[1]), np.float32)
    ref[ts.photo[clean]] = emb[clean]
    labels = (emb * ref[ts.photo]).sum(1)
    return np.where(clean, (emb * flip_emb).sum(1), labels).astype(np.float32)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic) if len(a) > 2 else float("nan")


#: The labelled training set, kept beside the checkpoints so that ``--resume`` does not detect and label again.
SET_FILE = "training_set.npz"
#: The options the training set depends on (a resumed run with other values builds it again).
_SET_OPTIONS = ("labels", "teacher_fr", "teacher_fr_args", "label_frs", "label_norms", "variants", "margin", "split",
                "seed", "max_photos", "every")


def _set_key(inputs: list[str], cfg: DistilConfig, scorer_args: dict | None) -> str:
    opts = {k: v for k, v in asdict(cfg).items() if k in _SET_OPTIONS}
    return json.dumps({"inputs": [str(Path(i).resolve()) for i in inputs], "scorer_args": scorer_args or {},
                       **opts}, sort_keys=True, default=str)


def save_training_set(ts: TrainingSet, path: Path, key: str) -> None:
    """Write ``ts`` (crops, labels, teacher embeddings) with the ``key`` of the options it was built with."""
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, key=np.array(key), aligned=ts.aligned, photo=ts.photo, ids=ts.ids, kinds=np.array(ts.kinds, str),
             strengths=ts.strengths, labels=ts.labels, teacher_emb=ts.teacher_emb)
    tmp.replace(path)


def load_training_set(path: Path, key: str) -> TrainingSet | None:
    """The training set saved at ``path`` when it was built with the options ``key``; else ``None``."""
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        if str(z["key"]) != key:
            log.info("%s was built with other options or inputs: building the training set again", path)
            return None
        return TrainingSet(z["aligned"], z["photo"], z["ids"], z["kinds"].tolist(), z["strengths"], z["labels"],
                           z["teacher_emb"])


def label_set(ts: TrainingSet, cfg: DistilConfig, scorer_args: dict | None = None) -> TrainingSet:
    """``ts`` with its labels (``cfg.labels``) and the teacher's embeddings."""
    fr = create_fr(cfg.teacher_fr, **cfg.teacher_fr_args)
    ts.teacher_emb = fr.embed(ts.aligned)
    if cfg.labels == "utility":
        ts.labels = utility_labels(ts.teacher_emb, ts, cfg.margin)
        each = [ts.labels]
        for name, args in cfg.label_frs:
            each.append(utility_labels(create_fr(name, **args).embed(ts.aligned), ts, cfg.margin))
            log.info("labels: %s's utility agrees with the teacher's at Spearman %.3f", name, _agree(each))
        for name, args in cfg.label_norms:
            each.append(norm_labels(create_fr(name, **args), ts.aligned))
            log.info("labels: %s's log feature norm agrees with the teacher's utility at Spearman %.3f", name,
                     _agree(each))
        ts.labels = several_teachers(each)
    elif cfg.labels == "consistency":
        ts.labels = consistency_labels(ts.teacher_emb, fr.embed(np.ascontiguousarray(ts.aligned[:, :, ::-1])), ts)
    else:
        ts.labels = np.asarray(create_scorer(cfg.labels.split(":", 1)[1], **(scorer_args or {})).score(ts.aligned),
                               np.float32)
    return ts


def distil(inputs: list[str], out: str | Path, cfg: DistilConfig, resume: bool = False,
           progress: bool = True, scorer_args: dict | None = None) -> dict:
    """Train a student (see the module docstring); returns a summary (also written to ``out/summary.json``).

    Raises:
        ValueError: ``utility`` labels without an identity folder, or too few photos.
    """

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    idset, items = collect_photos(inputs, cfg.every, cfg.max_photos, cfg.split, cfg.seed)
    if cfg.labels == "utility" and idset is None:
        raise ValueError("distil: --labels utility needs an identity folder (identities.csv or a sub-folder per "
                         "person); use --labels consistency or scorer:NAME for plain folders and videos")
    paths = idset.paths if idset is not None else items
    ids = idset.ids if idset is not None else -np.ones(len(items), np.int64)
    t0 = time.time()
    key = _set_key(inputs, cfg, scorer_args)
    ts = load_training_set(out / SET_FILE, key) if resume else None
    if ts is not None:
        log.info("resumed: the labelled training set from %s", out / SET_FILE)
    else:
        ts = label_set(build_set(paths, ids, cfg.variants, cfg.seed, progress), cfg, scorer_args)
        save_training_set(ts, out / SET_FILE, key)
    ok = np.isfinite(ts.labels)
    log.info("training set: %d crops of %d photos (%.0f s to build), %d without a label dropped",
             len(ts.labels), len(paths), time.time() - t0, int((~ok).sum()))

    # Validation split by identity (by photo when identities are unknown).
    groups = ts.ids if idset is not None else ts.photo
    uniq = np.unique(groups)
    val_groups = set(np.random.default_rng(cfg.seed).permutation(uniq)[: max(1, int(len(uniq) * cfg.val_fraction))]
                     .tolist())
    is_val = np.array([g in val_groups for g in groups.tolist()]) & ok
    is_train = ~is_val & ok
    mu, sd = float(ts.labels[is_train].mean()), float(ts.labels[is_train].std() + 1e-6)

    model = Student(cfg.arch)
    if cfg.init:
        log.info("backbone initialised from %s (%d tensors)", cfg.init, init_from_teacher(model, load_checkpoint(cfg.init)))
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    steps = cfg.epochs * int(np.ceil(is_train.sum() / cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(steps, 1), pct_start=0.1)
    start, history, best = 0, [], -2.0
    last = out / "last.pt"
    if resume and last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start, history, best = int(state["epoch"]), json.loads(state["history"]), float(state["best"])
        log.info("resumed from %s at epoch %d", last, start)
    teachers = "+".join([cfg.teacher_fr, *(name for name, _ in cfg.label_frs),
                         *(f"norm:{name}" for name, _ in cfg.label_norms)])
    meta = {"name": out.name, "teacher": cfg.labels if cfg.labels != "utility" else f"utility:{teachers}",
            "labels": cfg.labels, "label_mean": mu, "label_std": sd, "config": asdict(cfg),
            "training_photos": len(paths), "training_crops": int(is_train.sum()), "inputs": [str(i) for i in inputs]}
    train_idx = np.flatnonzero(is_train)
    y_all = torch.from_numpy((ts.labels - mu) / sd)
    t_all = torch.from_numpy(ts.teacher_emb)
    for epoch in range(start, cfg.epochs):
        model.train()
        order = np.random.default_rng(cfg.seed + epoch).permutation(train_idx)
        bar = range(0, len(order), cfg.batch_size)
        if progress:
            from tqdm import tqdm

            bar = tqdm(bar, desc=f"distil epoch {epoch + 1}/{cfg.epochs}", unit="batch")
        total = 0.0
        for i in bar:
            idx = order[i:i + cfg.batch_size]
            crops = ts.aligned[idx]
            if np.random.default_rng(cfg.seed * 7919 + epoch * 1000 + i).random() < 0.5:
                crops = np.ascontiguousarray(crops[:, :, ::-1])  # a mirror keeps quality and identity
            x = model.prepare(crops).contiguous(memory_format=torch.channels_last)
            q, e = model(x)
            loss = F.mse_loss(q, y_all[idx]) + cfg.embed_weight * (1 - (e * t_all[idx]).sum(1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        val = evaluate_student(model, ts, is_val)
        history.append({"epoch": epoch + 1, "train_loss": total / max(len(order), 1), **val})
        log.info("epoch %d: %s", epoch + 1, history[-1])
        if val["val_spearman"] > best or not np.isfinite(best):
            best = val["val_spearman"]
            save_student(model.eval(), out / "student.pt", {**meta, "history": history})
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "epoch": epoch + 1, "history": json.dumps(history), "best": best}, last)
    if not (out / "student.pt").is_file():  # resumed after the last epoch, or no validation
        save_student(model.eval(), out / "student.pt", {**meta, "history": history})

    best_model, _ = load_student(out / "student.pt")
    size = best_model.input_size
    export_onnx(_QualityOnly(best_model), out / "student.onnx", output_names=("quality", "embedding"),
                input_shape=(3, size, size))
    summary = {"out": str(out / "student.pt"), "onnx": str(out / "student.onnx"), "history": history,
               "best_val_spearman": best, "teacher": meta["teacher"]}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


@torch.inference_mode()
def evaluate_student(model: Student, ts: TrainingSet, mask: np.ndarray, batch: int = 256) -> dict:
    """Validation loss terms and Spearman between the student's score and the label."""
    model.eval()
    idx = np.flatnonzero(mask)
    if not len(idx):
        return {"val_spearman": float("nan"), "val_embed_cos": float("nan")}
    qs, cs = [], []
    for i in range(0, len(idx), batch):
        sl = idx[i:i + batch]
        q, e = model(model.prepare(ts.aligned[sl]))
        qs.append(q.numpy())
        cs.append((e.numpy() * ts.teacher_emb[sl]).sum(1))
    q = np.concatenate(qs)
    return {"val_spearman": spearman(q, ts.labels[idx]), "val_embed_cos": float(np.concatenate(cs).mean())}
