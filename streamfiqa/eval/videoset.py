"""The real-video set: face clips with who is in them and where their shots cut, split into two halves by person.

The clips live in ``../shared/data/videos/talking/`` (``MANIFEST.tsv``: source, licence, fps, people). What we
added by looking at them, frame by frame around every candidate, is in ``data/talking.json`` beside this module:

* ``persons``: the clips that show the same person (Obama ×4, Ocasio-Cortez ×3, …), from the manifest and checked
  by eye; every other clip is a person of its own.
* ``cuts``: per clip, the decoded-frame index of the first frame of each new shot (hard cuts, jump cuts within one
  scene included). A clip that is not listed has none.
* ``not_cuts``: frames that look like cuts to a colour histogram but are not (a picture-in-picture insert that
  changes, a webcam's exposure jump, a graded flash, a camera move): the false-cut cases.

The halves are made by person, seeded: every clip of a person lands in the same half, so nothing fit on the
development half has seen a test person's face.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamfiqa.eval.facedata import shared_dir

ANNOTATIONS = Path(__file__).resolve().parent / "data" / "talking.json"
HALVES = ("dev", "test")


def talking_dir() -> Path:
    """The real face clips in ``../shared``."""
    return shared_dir() / "data" / "videos" / "talking"


@dataclass(frozen=True)
class VideoClip:
    """One real clip.

    Attributes:
        path: the video file.
        name: its file name (the key of the annotations).
        person: who the clip's main face is (the same id for the same person in several clips).
        fps: its frame rate.
        cuts: decoded-frame indices where a new shot starts.
        not_cuts: frames a colour-histogram detector takes for cuts that are not.
        people: the manifest's "people visible" (``1``, ``1 (+ tiny background people)``, ``many …``).
        licence: the manifest's licence column.
    """

    path: Path
    name: str
    person: str
    fps: float
    cuts: tuple = ()
    not_cuts: tuple = ()
    people: str = "1"
    licence: str = ""

    @property
    def single_person(self) -> bool:
        return self.people.strip() == "1"


@dataclass
class VideoSet:
    """The clips of a folder and their annotations."""

    clips: list = field(default_factory=list)

    def half(self, name: str, seed: int = 0) -> "VideoSet":
        """``dev`` or ``test`` (disjoint by person, seeded), or ``all``."""
        if name == "all":
            return self
        if name not in HALVES:
            raise ValueError(f"video set: expected a half in {', '.join(HALVES)} or all, found {name!r}")
        persons = sorted({c.person for c in self.clips})
        order = np.random.default_rng(seed).permutation(len(persons))
        # deal the persons out in a seeded order, each to the half with fewer clips so far (balanced halves)
        count, where = {"dev": 0, "test": 0}, {}
        for i in order:
            p = persons[i]
            h = min(HALVES, key=lambda x: (count[x], x))
            where[p] = h
            count[h] += sum(c.person == p for c in self.clips)
        return VideoSet([c for c in self.clips if where[c.person] == name])

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self):
        return iter(self.clips)


def read_video_set(folder: str | Path | None = None, annotations: str | Path | None = None) -> VideoSet:
    """The clips listed in ``folder/MANIFEST.tsv`` with our annotations.

    Raises:
        FileNotFoundError: no manifest in ``folder``.
        ValueError: a manifest without the filename and fps columns, or a row naming no clip of ``folder`` or no
            frame rate.
    """
    folder = Path(folder) if folder else talking_dir()
    manifest = folder / "MANIFEST.tsv"
    if not manifest.is_file():
        raise FileNotFoundError(f"video set: expected {manifest} (tab-separated, a header row, then one clip a row: "
                                "filename and fps; people_visible and licence optional), found none")
    notes = json.loads(Path(annotations or ANNOTATIONS).read_text())
    person_of = {clip: person for person, clips in notes["persons"].items() for clip in clips}
    clips = []
    with open(manifest, newline="") as f:
        rows = csv.DictReader(f, delimiter="\t")
        missing = [k for k in ("filename", "fps") if k not in (rows.fieldnames or [])]
        if missing:
            raise ValueError(f"video set: expected {manifest} to have the columns filename and fps (tab-separated), "
                             f"found {', '.join(rows.fieldnames or []) or 'no header'}")
        for line, row in enumerate(rows, 2):
            name = row["filename"]
            try:
                fps = float(row["fps"])
            except (TypeError, ValueError):
                fps = 0.0
            if not fps > 0 or not (folder / name).is_file():
                raise ValueError(f"video set: {manifest} line {line}: expected a clip of {folder} and its frame rate, "
                                 f"found {name!r} ({'missing' if not (folder / name).is_file() else 'present'}) at "
                                 f"fps {row['fps']!r}")
            clips.append(VideoClip(folder / name, name, person_of.get(name, Path(name).stem), fps,
                                   tuple(notes["cuts"].get(name, ())), tuple(notes["not_cuts"].get(name, ())),
                                   row.get("people_visible", "1"), row.get("licence", "")))
    return VideoSet(clips)
