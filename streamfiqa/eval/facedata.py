"""Face photos with identities: reading, identity splits, pairs, and detected + aligned crops under a
protocol (``clean``, ``mixed``: seeded random degradations of random strength applied to the photo
before detection, or one ``PHOTO_KINDS`` kind at the bar's strength).

Shared by evaluation (EDC), distillation (FR-utility labels) and the tracking test bed.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from streamfiqa.align import ARCFACE_TEMPLATE, similarity_transform
from streamfiqa.detect import create_detector
from streamfiqa.eval.degrade import PHOTO_BAR, PHOTO_KINDS, degrade_photo
from streamfiqa.io.media import is_image

log = logging.getLogger(__name__)
PROTOCOLS = ("clean", "mixed", *PHOTO_KINDS)


def shared_dir() -> Path:
    """``../shared`` beside the checkout (development data; may be absent)."""
    return Path(__file__).resolve().parents[3] / "shared"


def celeba_ids_dir() -> Path:
    """The development identity set in ``../shared``."""
    return shared_dir() / "data" / "faces" / "celeba_ids"


def shared_mobilefacenet() -> Path:
    """The ArcFace MobileFaceNet ``.pt`` in ``../shared``."""
    return shared_dir() / "models" / "mobilefacenet" / "mobilefacenet_ms1m_arcface.pt"


@dataclass
class IdentitySet:
    """Photo paths with an integer identity each."""

    paths: list
    ids: np.ndarray

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, np.int64)
        if self.ids.shape != (len(self.paths),):
            raise ValueError(f"IdentitySet: expected {len(self.paths)} identities, found shape {self.ids.shape}")

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, mask: np.ndarray) -> "IdentitySet":
        """The photos where ``mask`` holds."""
        idx = np.flatnonzero(mask)
        return IdentitySet([self.paths[i] for i in idx], self.ids[idx])

    def split(self, part: str, seed: int = 0) -> "IdentitySet":
        """Half of the identities (``train`` or ``test``, disjoint; seeded shuffle), or ``all``."""
        if part == "all":
            return self
        if part not in ("train", "test"):
            raise ValueError(f"split: expected train, test or all, found {part!r}")
        people = np.unique(self.ids)
        order = np.random.default_rng(seed).permutation(len(people))
        train = set(people[order[: len(people) // 2]].tolist())
        mask = np.array([(i in train) == (part == "train") for i in self.ids.tolist()])
        return self.subset(mask)


def read_identities(folder: str | Path) -> IdentitySet:
    """An identity-labelled folder: ``identities.csv`` (``file,identity``; files under ``images/`` or
    beside it), or one sub-folder per person (LFW layout).

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: neither layout holds two photos of one person.
    """
    folder = Path(folder)
    if not folder.is_dir():
        found = "a file" if folder.exists() else "nothing"
        raise FileNotFoundError(f"expected an identity folder, found {found} at {folder}")
    paths, ids = [], []
    table = folder / "identities.csv"
    if table.is_file():
        base = folder / "images" if (folder / "images").is_dir() else folder
        names: dict[str, int] = {}
        with open(table, newline="") as fh:
            rows = csv.DictReader(fh)
            if not {"file", "identity"} <= set(rows.fieldnames or []):
                raise ValueError(f"{table}: expected columns file, identity; found {rows.fieldnames}")
            for row in rows:
                paths.append(str(base / row["file"]))
                ids.append(names.setdefault(row["identity"], len(names)))
    else:
        for k, person in enumerate(sorted(p for p in folder.iterdir() if p.is_dir())):
            for f in sorted(person.iterdir()):
                if is_image(f):
                    paths.append(str(f))
                    ids.append(k)
    ids_arr = np.asarray(ids, np.int64)
    if not len(ids_arr) or np.bincount(ids_arr).max() < 2:
        raise ValueError(f"{folder}: expected identities.csv or one sub-folder per person with ≥ 2 photos, "
                         f"found {len(paths)} photos")
    return IdentitySet(paths, ids_arr)


def pairs(ids: np.ndarray, impostors: int = 50_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every genuine pair and ``impostors`` seeded impostor pairs: ``(a, b, genuine)`` index arrays."""
    ids = np.asarray(ids)
    ga, gb = np.triu_indices(len(ids), 1)
    same = ids[ga] == ids[gb]
    gen_a, gen_b = ga[same], gb[same]
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(ids), impostors * 2)
    ib = rng.integers(0, len(ids), impostors * 2)
    ok = ids[ia] != ids[ib]
    ia, ib = ia[ok][:impostors], ib[ok][:impostors]
    a = np.concatenate([gen_a, ia])
    b = np.concatenate([gen_b, ib])
    return a, b, np.concatenate([np.ones(len(gen_a), bool), np.zeros(len(ia), bool)])


@dataclass
class FaceCrops:
    """Aligned crops of a photo set under one protocol.

    Attributes:
        aligned: ``(N, 112, 112, 3)`` BGR uint8.
        kinds: per photo, the degradation applied (``clean`` when none).
        strengths: per photo, its strength (0 when clean).
        redetected: per photo, whether the face was found on the degraded photo itself (else the clean
            photo's landmarks were used: the detector missed it).
        found: per photo, whether a face was found on the clean photo at all.
    """

    aligned: np.ndarray
    kinds: list = field(default_factory=list)
    strengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    redetected: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    found: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


def _largest(faces):
    return faces[np.array([int(np.argmax(faces.sizes))])] if len(faces) else faces


def protocol_plan(n: int, protocol: str, seed: int, fraction: float = 0.5,
                  full_range: bool = False) -> tuple[list, np.ndarray]:
    """Per photo, the kind and strength a protocol applies (seeded): ``mixed`` degrades ``fraction`` of the
    photos with a random kind at a uniform random strength between none and the ranking bar's strength
    for that kind (noise up to σ 25, JPEG down to q 8, …: :data:`PHOTO_BAR`; ``full_range``: up to the
    most severe, as training uses); a kind name applies it to every photo at the bar's strength;
    ``clean`` applies nothing."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol: expected one of {', '.join(PROTOCOLS)}, found {protocol!r}")
    if protocol == "clean":
        return ["clean"] * n, np.zeros(n, np.float32)
    if protocol in PHOTO_KINDS:
        return [protocol] * n, np.full(n, PHOTO_BAR[protocol], np.float32)
    rng = np.random.default_rng(seed)
    kinds = list(PHOTO_KINDS)
    chosen = [kinds[k] if d else "clean" for k, d in zip(rng.integers(0, len(kinds), n), rng.random(n) < fraction)]
    top = np.array([1.0 if full_range or c == "clean" else PHOTO_BAR[c] for c in chosen])
    strength = np.where([c != "clean" for c in chosen], rng.random(n) * top, 0.0).astype(np.float32)
    return chosen, strength


def load_crops(paths: list, detector=None, protocol: str = "clean", seed: int = 0, progress: bool = False,
               plan: tuple[list, np.ndarray] | None = None) -> FaceCrops:
    """Detect the largest face of each photo (clean), apply the protocol's degradation to the whole photo,
    detect again on the degraded photo and align. Photos without a face on the clean photo are aligned
    from a centred default (flagged in ``found``).

    Args:
        paths: photo files.
        detector: a :class:`~streamfiqa.detect.Detector` (default: the embedded RetinaFace).
        protocol: one of :data:`PROTOCOLS`.
        seed: seeds the plan and the noise.
        progress: show a tqdm bar.
        plan: ``(kinds, strengths)`` to apply instead of the protocol's own.
    """

    det = detector or create_detector("retinaface", min_face=10, score_threshold=0.5)
    kinds, strengths = plan if plan is not None else protocol_plan(len(paths), protocol, seed)
    out = np.zeros((len(paths), 112, 112, 3), np.uint8)
    redetected = np.zeros(len(paths), bool)
    found = np.zeros(len(paths), bool)
    it = enumerate(paths)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, total=len(paths), desc=f"faces ({protocol})", unit="photo")
    for i, path in it:
        photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if photo is None:
            raise ValueError(f"{path}: expected a readable image")
        faces = _largest(det.detect(photo))
        found[i] = len(faces) > 0
        if found[i]:
            lm = faces.landmarks[0]
        else:  # a centred face at the framing of the set (≈ half the photo wide)
            h, w = photo.shape[:2]
            lm = (ARCFACE_TEMPLATE - 56.0) * (min(h, w) / 2 / 112.0 * 1.6) + [w / 2, h / 2]
        if kinds[i] != "clean":
            rng = np.random.default_rng([seed, i])
            photo = degrade_photo(photo, kinds[i], float(strengths[i]), lm, rng)
            again = _largest(det.detect(photo))
            if len(again) and np.linalg.norm(again.landmarks[0].mean(0) - lm.mean(0)) < \
                    np.linalg.norm(lm[1] - lm[0]):
                lm, redetected[i] = again.landmarks[0], True
        else:
            redetected[i] = found[i]
        out[i] = cv2.warpAffine(photo, similarity_transform(lm, ARCFACE_TEMPLATE), (112, 112), borderValue=0)
    return FaceCrops(out, list(kinds), np.asarray(strengths, np.float32), redetected, found)
