"""Cut and multi-person cases made from real footage, with their truth by construction.

* ``join``: the first seconds of one person's clip, then the first seconds of another person's (resized to the first's
  frame): a hard cut to another person. Clips of the same source are joined first (the same studio, set and colours:
  the case a colour histogram misses).
* ``jump``: two moments of one clip, the middle cut out: a jump cut within one scene, one person on both sides.
* ``paste``: another person's clip shrunk into a corner of the frames, moving slowly towards the main face: two
  people in every frame.

Every face's person is known: by the segment it is in (``join``, ``jump``) or by whether most of its box lies in the
pasted rectangle (``paste``: the main face, partly hidden by the inset, is sometimes found as a smaller box whose
centre falls inside the inset; a development case, looked at frame by frame, showed the main person's face there).
Only clips of one person are used.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from streamfiqa.eval.videoset import VideoClip

KINDS = ("join", "jump", "paste")
#: The share of a face's box inside the pasted rectangle from which on it is the pasted person's face. The pasted
#: person's pixels exist only inside it, and the host's are gone from it: on 42 pasted cases of the development
#: half (21 pairs of clips, insets of 0.35 and 0.5 of the frame's height; 10 445 faces) every face of the pasted
#: person lay 99-100 % inside, every other face at most 74 % (the host, partly hidden, found as a smaller box of
#: what shows of it; looked at frame by frame in reagan_clip1 and SadTalker's Ocasio-Cortez clip).
PASTED_SHARE = 0.9


@dataclass
class VideoCase:
    """A clip made from real ones, with its truth.

    Attributes:
        path: the written clip; ``name``: its name.
        kind: one of :data:`KINDS`.
        fps: its frame rate.
        cuts: first frames of new shots.
        segments: ``(first_frame, person)`` from which frame on a person fills the frame (``join``, ``jump``).
        paste: ``frame → (x1, y1, x2, y2, person)`` of the pasted clip (``paste``).
        person: the main person (``paste``).
    """

    path: Path
    name: str
    kind: str
    fps: float
    cuts: tuple = ()
    segments: list = field(default_factory=list)
    paste: dict = field(default_factory=dict)
    person: str = ""

    def person_of(self, frame: int, box: np.ndarray) -> str:
        """Who the face with ``box`` in ``frame`` is."""
        if self.kind == "paste":
            if int(frame) not in self.paste:  # before the pasted person walks in
                return self.person
            x1, y1, x2, y2, who = self.paste[int(frame)]
            inside = max(min(box[2], x2) - max(box[0], x1), 0) * max(min(box[3], y2) - max(box[1], y1), 0)
            area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
            return who if inside >= PASTED_SHARE * area else self.person
        return next(p for f, p in reversed(self.segments) if frame >= f)

    def as_clip(self) -> VideoClip:
        """The case as a :class:`VideoClip` (its cut truth; no person of its own)."""
        return VideoClip(self.path, self.name, self.person or "case", self.fps, tuple(self.cuts))


def _frames(clip: VideoClip, start_s: float = 0.0, seconds: float | None = None) -> list[np.ndarray]:
    import av

    from streamfiqa.io.sources import turn_upright

    out = []
    with av.open(str(clip.path)) as c:
        for f in c.decode(video=0):
            t = f.time if f.time is not None else len(out) / clip.fps
            if t < start_s - 1e-6:
                continue
            if seconds is not None and t >= start_s + seconds - 1e-6:
                break
            out.append(turn_upright(f.to_ndarray(format="bgr24"), f))
    return out


def case_folder(clips: list[VideoClip], recipe: str) -> Path:
    """Where the cases of ``recipe`` (a name for how they are made: kind, seed, count) built from ``clips`` are kept:
    in the model cache (``STREAMFIQA_CACHE``), under a digest of the clips' names and sizes.

    The same frames encoded twice by x264 do not always give the same file (the first encode in a process, and one
    after other work, differed by up to 37 grey levels on a 224-px clip), so a case made afresh on every run moved
    the protocol's figures from run to run. Made once and kept, the cases are the same for every run on a machine."""
    import hashlib

    from streamfiqa.backends import cache_dir

    key = hashlib.sha256("\n".join(f"{c.name}:{Path(c.path).stat().st_size}" for c in clips).encode()).hexdigest()
    folder = cache_dir() / "videocases" / f"{recipe}-{key[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _write(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """Encode ``frames`` to ``path`` (H.264); a file already there with as many frames of the same size is kept
    (:func:`case_folder`)."""
    import av

    from streamfiqa.backends import written_whole

    h, w = frames[0].shape[:2]
    if path.is_file():
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            if (s.frames, s.width, s.height) == (len(frames), w - w % 2, h - h % 2):
                return
    with written_whole(path) as part:  # never half a case (an .mp4 part: PyAV picks the format by its suffix)
        _encode(part, frames, fps)


def _encode(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """``frames`` as H.264 in ``path`` (crf 18, even width and height)."""
    from fractions import Fraction

    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(round(fps * 1000), 1000))
        s.width, s.height, s.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        s.options = {"crf": "18", "preset": "veryfast"}
        for img in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[: h - h % 2, : w - w % 2]), format="bgr24")
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)


def _fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` scaled to cover ``size`` (width, height), centre-cropped."""
    w, h = size
    s = max(w / img.shape[1], h / img.shape[0])
    big = cv2.resize(img, (max(w, round(img.shape[1] * s)), max(h, round(img.shape[0] * s))), interpolation=cv2.INTER_AREA)
    y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[y0:y0 + h, x0:x0 + w]


def excerpt(clip: VideoClip, folder: Path, first: int, count: int) -> VideoClip:
    """``count`` frames of ``clip`` from frame ``first`` on, re-encoded: the moment around a cut without the rest of
    the clip, with the cuts inside it renumbered (its ``not_cuts`` likewise)."""
    frames = _frames(clip, (first - 0.5) / clip.fps, count / clip.fps)
    name = f"{Path(clip.name).stem}__{first}-{first + len(frames)}.mp4"
    _write(folder / name, frames, clip.fps)
    inside = lambda frames_: tuple(f - first for f in frames_ if first <= f < first + len(frames))  # noqa: E731
    return replace(clip, path=folder / name, name=name, cuts=inside(clip.cuts), not_cuts=inside(clip.not_cuts))


def make_join(a: VideoClip, b: VideoClip, folder: Path, seconds: float = 4.0) -> VideoCase:
    """``a``'s first ``seconds``, then ``b``'s, at ``a``'s size and rate."""
    first, second = _frames(a, 0, seconds), _frames(b, 0, seconds)
    size = (first[0].shape[1], first[0].shape[0])
    name = f"join__{Path(a.name).stem}__{Path(b.name).stem}.mp4"
    _write(folder / name, first + [_fit(f, size) for f in second], a.fps)
    return VideoCase(folder / name, name, "join", a.fps, (len(first),), [(0, a.person), (len(first), b.person)])


def make_jump(a: VideoClip, folder: Path, keep: float = 0.4) -> VideoCase:
    """``a`` with its middle cut out: its first and last ``keep`` of frames."""
    frames = _frames(a)
    n = int(len(frames) * keep)
    name = f"jump__{Path(a.name).stem}.mp4"
    _write(folder / name, frames[:n] + frames[-n:], a.fps)
    return VideoCase(folder / name, name, "jump", a.fps, (n,), [(0, a.person)])


def make_paste(a: VideoClip, b: VideoClip, folder: Path, seconds: float = 6.0, share: float = 0.35,
               enter_s: float = 0.0) -> VideoCase:
    """``b`` shrunk to ``share`` of ``a``'s height, pasted into ``a``'s frames from ``enter_s`` on (a newcomer),
    drifting from a corner towards the centre a little over the clip."""
    base, inset = _frames(a, 0, seconds), _frames(b, 0, seconds)
    h, w = base[0].shape[:2]
    side = int(h * share)
    ih, iw = side, int(side * inset[0].shape[1] / inset[0].shape[0])
    if iw >= w:  # a wide clip into a tall frame: half the frame's width instead (cases that fit are unchanged)
        iw, ih = w // 2, int(w // 2 * inset[0].shape[0] / inset[0].shape[1])
    name = f"paste__{Path(a.name).stem}__{Path(b.name).stem}.mp4"
    frames, where = [], {}
    n, enter = len(base), int(round(enter_s * a.fps))
    for k, img in enumerate(base):
        if k < enter:
            frames.append(img)
            continue
        t = k / max(n - 1, 1)
        x0 = int((w - iw) * (1 - 0.15 * t))  # from the right edge, drifting inwards
        y0 = int((h - ih) * (1 - 0.1 * t))
        out = img.copy()
        out[y0:y0 + ih, x0:x0 + iw] = cv2.resize(inset[min(k - enter, len(inset) - 1)], (iw, ih),
                                                 interpolation=cv2.INTER_AREA)
        frames.append(out)
        where[k] = (x0, y0, x0 + iw, y0 + ih, b.person)
    _write(folder / name, frames, a.fps)
    return VideoCase(folder / name, name, "paste", a.fps, (), [], where, a.person)


def make_cases(clips: list[VideoClip], folder: str | Path, per_kind: int = 6, seed: int = 0) -> list[VideoCase]:
    """``per_kind`` cases of each kind from the single-person ``clips`` (seeded; pairs of one source first)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    single = [c for c in clips if c.single_person and not c.cuts]
    order = [single[i] for i in rng.permutation(len(single))]
    source = {c.name: c.name.split("__")[0] for c in order}
    pairs, used = [], set()
    for same in (True, False):  # the same source's clips first: the same set and colours
        for a in order:
            for b in order:
                if len(pairs) >= 2 * per_kind:
                    break
                key = (a.name, b.name)
                if a.person == b.person or key in used or (source[a.name] == source[b.name]) != same:
                    continue
                if a.name in {p for q in used for p in q} and same:
                    continue
                used.add(key)
                pairs.append((a, b))
    cases = [make_join(a, b, folder) for a, b in pairs[:per_kind]]
    cases += [make_jump(a, folder) for a in order[:per_kind]]
    cases += [make_paste(a, b, folder) for a, b in pairs[per_kind:2 * per_kind]]
    return cases
