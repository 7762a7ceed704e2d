"""The video protocol: how good is the crop the pipeline publishes for each track of real footage?

For each clip the real pipeline runs (offline defaults unless told otherwise) and every tracked face is kept: its
track, frame, time, box, scores and aligned crop. Each face is then embedded by one or more recognisers, and its
**utility** under recogniser R is its mean cosine similarity to the same person's faces at least ``gap_s`` seconds
away in the same clip, and to the person's faces in other clips (how well R would match it against what else it
knows of that person). Per track:

* the published crop's **percentile** among the track's faces by utility (50 = a random face, 100 = the best),
  whether it **beats the track's median** face, its **regret** (best utility − published utility), whether it is
  among the **top 5** faces;
* **purity**: a track holding faces of two people (where the people are known: joined and pasted cases);
* per clip, **cuts** found, missed and false against the cut truth, and **people with no crop**.

Who a face is: for a clip of one person, every track whose faces match the clip's main face (cosine of the track's
mean embedding to the clip's, under the first recogniser, at least ``same_person``) is that person, any other track a
person of its own (a bystander); constructed cases (:mod:`streamfiqa.eval.videocases`) give every face's person.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamfiqa.eval.tracking import observe_clip
from streamfiqa.eval.videoset import VideoClip

log = logging.getLogger(__name__)
#: Faces closer in time than this to a face do not count towards its utility (they are nearly the same picture).
GAP_S = 2.0
#: Tracks with fewer faces are not scored (too short to choose among).
MIN_TRACK_FACES = 10
#: A track whose mean embedding (first recogniser) is at least this close to the clip's main face is that person.
SAME_PERSON = 0.3


@dataclass
class ClipRun:
    """What the pipeline saw and published on one clip.

    Attributes:
        name: the clip's name.
        track, frame: per tracked face, its track id and decoded-frame index.
        pts: its stream time (s).
        boxes: ``(N, 4)`` boxes; ``det``: detector scores; ``fast``: the fast scorer's score (NaN where it did not run).
        components: ``(N, C)`` tier-0 components (``quality.tier0.COMPONENTS``).
        embeddings: ``(N, D)`` the tracker's embeddings (the fast student's), or empty.
        aligned: ``(N, 112, 112, 3)`` aligned crops.
        events: the ``best`` events' metadata.
        cuts: frames the source flagged as the first of a new shot.
        frames: frames processed; ``size``: the frame's (width, height).
        person: per face, who it is (filled by :func:`label_persons` or a constructed case's truth).
    """

    name: str
    track: np.ndarray
    frame: np.ndarray
    pts: np.ndarray
    boxes: np.ndarray
    det: np.ndarray
    fast: np.ndarray
    components: np.ndarray
    embeddings: np.ndarray
    aligned: np.ndarray
    events: list
    cuts: list
    frames: int
    size: tuple
    fps: float = 25.0
    person: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    fr: dict = field(default_factory=dict)  # recogniser name → (N, D) embeddings
    kind: str = "natural"  # or the constructed case's kind (``videocases.KINDS``)

    def __len__(self) -> int:
        return len(self.track)

    def published(self) -> list[Published]:
        """Each ``best`` event: the face it carries and the faces its track covers — the tracker track's faces in the
        event's time span (a part split off has its own span and id), plus those of tracks merged into it."""
        out = []
        for e in self.events:
            if e.get("event") != "best" or e.get("track_id") is None or "frame_index" not in e:
                continue
            i = self._face_of(e)
            if i is None:
                log.warning("%s: track %s's best frame %s is not among the tracked faces", self.name, e["track_id"],
                            e["frame_index"])
                continue
            span = e.get("track", {})
            members = self._span(int(self.track[i]), span.get("first_pts", -np.inf), span.get("last_pts", np.inf))
            for m in e.get("merged", []):
                members |= self._span(int(m["track_id"]), m["first_pts"], m["last_pts"])
            members[i] = True
            score = (e.get("quality") or {}).get("score")
            out.append(Published(int(e["track_id"]), i, np.flatnonzero(members),
                                 float(score) if score is not None else float("nan")))
        return out

    def _face_of(self, event: dict) -> int | None:
        """The face an event carries: on its frame, its own track's face, else the face whose box is nearest."""
        on = np.flatnonzero(self.frame == int(event["frame_index"]))
        if not len(on):
            return None
        mine = on[self.track[on] == int(event["track_id"])]
        if len(mine):
            return int(mine[0])
        box = np.asarray(event.get("box", self.boxes[on[0]]), np.float64)
        return int(on[np.argmin(np.abs(self.boxes[on] - box).sum(1))])

    def _span(self, tid: int, first: float, last: float) -> np.ndarray:
        return (self.track == tid) & (self.pts >= first - 1e-3) & (self.pts <= last + 1e-3)


@dataclass
class Published:
    """A published track as the protocol scores it: the event's id, the face it carries, the faces it covers, and
    the quality score the event carries (what a user would threshold on; NaN when it carries none)."""

    track_id: int
    index: int
    members: np.ndarray
    score: float = float("nan")


def run_clip(path: str | Path, overrides: list[str] | None = None, base: dict | None = None,
             name: str | None = None) -> ClipRun:
    """Run the pipeline over one clip and keep every tracked face (see :class:`ClipRun`)."""
    rows: list = []
    crops: list = []
    cuts: list = []
    seen = {"frames": 0, "size": (0, 0)}

    def observe(sid, sf, assignments, confirmed) -> None:
        seen["frames"] += 1
        seen["size"] = (sf.frame.image.shape[1], sf.frame.image.shape[0])
        if sf.cut:
            cuts.append(sf.frame.index)
        fast = next((v for k, v in sf.scores.items() if k != "tier0"), None)
        for tid, d in assignments:
            emb = sf.embeddings[d] if sf.embeddings is not None else np.zeros(0, np.float32)
            rows.append((tid, sf.frame.index, sf.frame.pts, sf.faces.boxes[d], float(sf.faces.scores[d]),
                         float(fast[d]) if fast is not None else np.nan, sf.quality.components[d], emb))
            crops.append(sf.crops.aligned[d])

    events = observe_clip(path, observe, overrides, base)
    if not rows:
        return ClipRun(name or Path(path).name, np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros((0, 4)),
                       np.zeros(0), np.zeros(0), np.zeros((0, 9)), np.zeros((0, 0)), np.zeros((0, 112, 112, 3), np.uint8),
                       events, cuts, seen["frames"], seen["size"])
    cols = list(zip(*rows))
    return ClipRun(name or Path(path).name, np.array(cols[0]), np.array(cols[1]), np.array(cols[2], np.float64),
                   np.stack(cols[3]), np.array(cols[4], np.float32), np.array(cols[5], np.float32), np.stack(cols[6]),
                   np.stack(cols[7]).astype(np.float32), np.stack(crops), events, cuts, seen["frames"], seen["size"])


def embed(run: ClipRun, recognisers: dict) -> None:
    """Embed every face of ``run`` with each recogniser (name → FR model)."""
    for name, fr in recognisers.items():
        run.fr[name] = fr.embed(run.aligned) if len(run) else np.zeros((0, 1), np.float32)


def label_persons(run: ClipRun, clip: VideoClip, recogniser: str, same_person: float = SAME_PERSON) -> None:
    """Who each face of a natural clip is: the clip's person for every track that looks like the clip's main face,
    a bystander of its own for every other track (see the module docstring)."""
    run.person = np.empty(len(run), object)
    if not len(run):
        return
    emb = run.fr[recogniser]
    tracks, counts = np.unique(run.track, return_counts=True)
    means = {t: _unit(emb[run.track == t].mean(0)) for t in tracks}
    main = _unit(sum(means[t] * n for t, n in zip(tracks, counts)))  # face-weighted: the clip's main face
    for t in tracks:
        run.person[run.track == t] = clip.person if float(means[t] @ main) >= same_person else f"{clip.name}#{t}"


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def utilities(runs: list[ClipRun], recogniser: str, gap_s: float = GAP_S) -> list[np.ndarray]:
    """Per run, per face: mean cosine (under ``recogniser``) to the same person's faces at least ``gap_s`` away in
    the same clip and in every other clip (NaN for a face with no such face)."""
    by_person: dict = {}
    for r, run in enumerate(runs):
        for p in set(run.person.tolist()):
            idx = np.flatnonzero(run.person == p)
            by_person.setdefault(p, []).append((r, idx))
    out = [np.full(len(run), np.nan) for run in runs]
    for p, parts in by_person.items():
        emb = np.concatenate([runs[r].fr[recogniser][idx] for r, idx in parts])
        clip = np.concatenate([np.full(len(idx), r) for r, idx in parts])
        pts = np.concatenate([runs[r].pts[idx] for r, idx in parts])
        sim = emb @ emb.T
        far = (clip[:, None] != clip[None, :]) | (np.abs(pts[:, None] - pts[None, :]) >= gap_s)
        n = far.sum(1)
        u = np.where(n > 0, (sim * far).sum(1) / np.maximum(n, 1), np.nan)
        k = 0
        for r, idx in parts:
            out[r][idx] = u[k:k + len(idx)]
            k += len(idx)
    return out


def track_report(run: ClipRun, utility: np.ndarray, min_faces: int = MIN_TRACK_FACES) -> list[dict]:
    """Per published track with enough scored faces: the published crop's percentile, whether it beats the median,
    regret, top-5, and the track's persons."""
    rows = []
    for pub in sorted(run.published(), key=lambda p: p.track_id):
        tid, i, mine = pub.track_id, pub.index, pub.members
        u = utility[mine]
        ok = np.isfinite(u)
        persons = sorted(set(run.person[mine].tolist()))
        row = {"clip": run.name, "track": tid, "faces": int(len(mine)), "persons": persons,
               "mixed": len(persons) > 1}
        if ok.sum() >= min_faces and np.isfinite(utility[i]):
            u, v = u[ok], float(utility[i])
            row.update({"percentile": float(100 * (np.sum(u < v) + 0.5 * np.sum(u == v)) / len(u)),
                        "beats_median": bool(v > np.median(u)), "regret": float(u.max() - v),
                        "top5": bool(np.sum(u > v) < 5), "published_utility": v, "best_utility": float(u.max()),
                        "median_utility": float(np.median(u)), "published_frame": int(run.frame[i])})
        rows.append(row)
    return rows


def cut_report(run: ClipRun, clip: VideoClip, tolerance: int = 1) -> dict:
    """Cuts found, missed and false against the clip's truth (a flag within ``tolerance`` frames of a cut)."""
    truth = list(clip.cuts)
    found = [c for c in truth if any(abs(f - c) <= tolerance for f in run.cuts)]
    false = [f for f in run.cuts if not any(abs(f - c) <= tolerance for c in truth)]
    return {"cuts": len(truth), "found": len(found), "missed": sorted(set(truth) - set(found)), "false": false,
            "false_at_known_not_cuts": [f for f in false if f in clip.not_cuts]}


def people_without_crop(run: ClipRun, min_s: float = 1.0) -> list[str]:
    """Persons seen for at least ``min_s`` seconds of the clip whose faces are in no published track."""
    covered = np.zeros(len(run), bool)
    for pub in run.published():
        covered[pub.members] = True
    missing = []
    for p in sorted(set(run.person.tolist())):
        mine = run.person == p
        if len(np.unique(run.frame[mine])) < min_s * run.fps:
            continue
        if not (covered & mine).any():
            missing.append(p)
    return missing


def summarise(rows: list[dict]) -> dict:
    """Mean percentile, share beating the median, mean regret and top-5 share over the scored tracks; the tracks
    holding more than one person, counted and named (``clip#track: persons``)."""
    scored = [r for r in rows if "percentile" in r]
    if not scored:
        return {"tracks": 0}
    return {"tracks": len(scored), "mean_percentile": round(float(np.mean([r["percentile"] for r in scored])), 1),
            "beats_median": round(float(np.mean([r["beats_median"] for r in scored])), 3),
            "mean_regret": round(float(np.mean([r["regret"] for r in scored])), 4),
            "top5": round(float(np.mean([r["top5"] for r in scored])), 3),
            "mixed_tracks": int(sum(r["mixed"] for r in rows)),
            "mixed_at": [f"{r['clip']}#{r['track']}: {'+'.join(r['persons'])}" for r in rows if r["mixed"]]}


def gallery_edc(runs: list[ClipRun], recogniser: str, gap_s: float = GAP_S, fmr: float = 1e-3,
                seed: int = 0) -> dict:
    """EDC of the published crops against a gallery, discarding the lowest **published quality score** first.

    Each published crop is a probe, compared (cosine under ``recogniser``) with one template per person: the mean of
    the person's faces, as an enrolment would hold. Two galleries:

    * ``other_clips``: where the person is in another natural clip (the manifest's same person), the template is
      their faces there; the probes are the published crops of natural clips whose person has such a clip.
    * ``same_clip``: every published crop; its person's template is their faces in its own clip at least ``gap_s``
      away (the utility's reference): a gallery for everyone, but from the same session.

    Non-mated comparisons: each probe with every other person's template (all their faces, every clip and case). The
    decision threshold sits at FMR ``fmr`` of those; the curve is :func:`streamfiqa.eval.edc.edc`'s, with ``random``
    and ``oracle`` (probes ordered by their own mated similarity) beside it.

    Returns:
        Per gallery: ``probes``, ``persons``, ``non_mated``, ``threshold``, ``fnmr_at_0`` and per ordering
        (``published score``, ``random``, ``oracle``) its ``pauc_0.2``/``pauc_0.3`` and normalised ``norm_0.2``/
        ``norm_0.3`` (1 = random; None where nothing fails at zero discard).
    """
    from streamfiqa.eval.edc import edc_table

    sums: dict = {}
    for run in runs:
        for p in set(run.person.tolist()):
            e = run.fr[recogniser][run.person == p]
            s = sums.setdefault(p, [np.zeros(e.shape[1]), 0])
            s[0], s[1] = s[0] + e.sum(0), s[1] + len(e)
    persons = sorted(sums)
    templates = np.stack([_unit(sums[p][0]) for p in persons]) if persons else np.zeros((0, 1))
    published = [run.published() for run in runs]
    out = {}
    for gallery in ("other_clips", "same_clip"):
        sim, gen, probe, score, who = [], [], [], [], set()
        for r, run in enumerate(runs):
            for pub in published[r]:
                i, p = pub.index, run.person[pub.index]
                if not np.isfinite(pub.score):
                    continue
                if gallery == "other_clips":
                    if run.kind != "natural":
                        continue
                    mine = [o.fr[recogniser][o.person == p] for k, o in enumerate(runs)
                            if k != r and o.kind == "natural"]
                else:
                    mine = [run.fr[recogniser][(run.person == p) & (np.abs(run.pts - run.pts[i]) >= gap_s)]]
                mine = [m for m in mine if len(m)]
                if not mine:
                    continue
                e = run.fr[recogniser][i]
                others = templates[[q != p for q in persons]]
                sim += [float(e @ _unit(np.concatenate(mine).mean(0))), *(others @ e).tolist()]
                gen += [True] + [False] * len(others)
                probe += [len(score)] * (1 + len(others))
                score.append(pub.score)
                who.add(p)
        if not score or all(gen):
            out[gallery] = {"probes": len(score)}
            continue
        probe = np.asarray(probe)
        table = edc_table(np.asarray(sim), np.asarray(gen), probe, probe, {"published score": np.asarray(score)},
                          fmr, seed)
        tidy = lambda v: round(float(v), 4) if np.isfinite(v) else None  # noqa: E731
        out[gallery] = {"probes": len(score), "persons": len(who), "non_mated": int(len(gen) - sum(gen)),
                        "threshold": tidy(table["oracle"]["threshold"]),
                        "fnmr_at_0": tidy(table["oracle"]["fnmr"][0]),
                        **{name: {k: tidy(c[k]) for k in ("pauc_0.2", "pauc_0.3", "norm_0.2", "norm_0.3")}
                           for name, c in table.items()}}
    return out


def label_case(run: ClipRun, case) -> None:
    """Every face's person from a constructed case's truth (:class:`~streamfiqa.eval.videocases.VideoCase`)."""
    run.person = np.array([case.person_of(f, b) for f, b in zip(run.frame, run.boxes)], object)


def plot_tracks(run: ClipRun, utility: np.ndarray, path: str | Path, recogniser: str) -> None:
    """Utility over time of each track's faces, with the published face ringed (a PNG drawn with OpenCV)."""
    import cv2

    w, h, m = 900, 360, 50
    img = np.full((h, w, 3), 255, np.uint8)
    ok = np.isfinite(utility)
    if not ok.any():
        return
    t0, t1 = float(run.pts.min()), float(max(run.pts.max(), run.pts.min() + 1e-3))
    lo, hi = float(np.nanmin(utility)) - 0.02, float(np.nanmax(utility)) + 0.02
    px = lambda t: int(m + (t - t0) / (t1 - t0) * (w - 2 * m))  # noqa: E731
    py = lambda u: int(h - m - (u - lo) / max(hi - lo, 1e-6) * (h - 2 * m))  # noqa: E731
    cv2.rectangle(img, (m, m), (w - m, h - m), (0, 0, 0), 1)
    colours = [(200, 60, 30), (30, 140, 30), (30, 30, 200), (150, 0, 150), (0, 150, 150), (90, 90, 90)]
    colour_of = {}
    for k, tid in enumerate(np.unique(run.track)):
        idx = np.flatnonzero((run.track == tid) & ok)
        idx = idx[np.argsort(run.pts[idx])]
        col = colour_of[int(tid)] = colours[k % len(colours)]
        for a, b in zip(idx[:-1], idx[1:]):
            cv2.line(img, (px(run.pts[a]), py(utility[a])), (px(run.pts[b]), py(utility[b])), col, 1)
    for pub in run.published():
        i = pub.index
        if np.isfinite(utility[i]):
            cv2.circle(img, (px(run.pts[i]), py(utility[i])), 7, colour_of[int(run.track[i])], 2)
    for u in np.linspace(lo, hi, 5):
        cv2.putText(img, f"{u:.2f}", (4, py(u) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    for t in np.linspace(t0, t1, 6):
        cv2.putText(img, f"{t:.1f}s", (px(t) - 12, h - m + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    cv2.putText(img, f"{run.name[:70]}: utility under {recogniser} (ring: published)", (m, 30),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    for c in run.cuts:
        if c in set(run.frame.tolist()):
            t = float(run.pts[run.frame == c][0])
            cv2.line(img, (px(t), m), (px(t), h - m), (0, 0, 255), 1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


def evaluate_videos(clips: list, cases: list, recognisers: dict, overrides: list[str] | None = None,
                    base: dict | None = None, out: str | Path | None = None, progress=None) -> dict:
    """The whole protocol over natural clips (:class:`~streamfiqa.eval.videoset.VideoClip`) and constructed cases.

    Args:
        clips: natural clips (persons labelled by :func:`label_persons`).
        cases: constructed cases (persons by construction).
        recognisers: name → FR model (at least two; the first labels persons).
        overrides, base: the pipeline's configuration (``base``: a pipeline's DEFAULTS).
        out: where plots go (``out/plots/<clip>.png``), or None for none.
        progress: called with each clip's name as it is done.

    Returns:
        ``{"summary": {recogniser: {...}}, "gallery_edc": {recogniser: {...}}, "tracks": [...], "clips": [...],
        "cuts": {...}}`` (:func:`gallery_edc`).
    """
    check_recognisers(recognisers)
    first = next(iter(recognisers))
    runs, infos = [], []
    for item in [*clips, *cases]:
        is_case = hasattr(item, "person_of")
        clip = item.as_clip() if is_case else item
        run = run_clip(clip.path, overrides, base, clip.name)
        run.fps, run.kind = clip.fps, item.kind if is_case else "natural"
        embed(run, recognisers)
        (label_case(run, item) if is_case else label_persons(run, clip, first))
        run.aligned = run.aligned[:0]  # crops are not needed past here
        runs.append(run)
        infos.append({"clip": clip.name, "kind": item.kind if is_case else "natural", "frames": run.frames,
                      "seconds": round(run.frames / max(clip.fps, 1e-6), 2), "faces": len(run),
                      "tracks": int(len(np.unique(run.track))) if len(run) else 0,
                      "best_events": sum(e.get("event") == "best" for e in run.events),
                      **cut_report(run, clip), "people_without_crop": people_without_crop(run)})
        if progress is not None:
            progress(clip.name)
    result = {"recognisers": list(recognisers), "clips": infos, "tracks": [], "summary": {}}
    for name in recognisers:
        util = utilities(runs, name)
        rows = []
        for run, u in zip(runs, util):
            for row in track_report(run, u):
                rows.append({**row, "recogniser": name})
            if out is not None and name == first:
                plot_tracks(run, u, Path(out) / "plots" / f"{Path(run.name).stem}.png", name)
        result["tracks"] += rows
        result["summary"][name] = summarise(rows)
        result.setdefault("gallery_edc", {})[name] = gallery_edc(runs, name)
    natural = [i for i in infos if i["kind"] == "natural"]
    minutes_free = sum(i["seconds"] for i in infos if not i["cuts"]) / 60
    minutes = sum(i["seconds"] for i in infos) / 60
    false = sum(len(i["false"]) for i in infos)
    result["cuts"] = {"truth": sum(i["cuts"] for i in infos), "found": sum(i["found"] for i in infos),
                      "missed": sum(len(i["missed"]) for i in infos), "false": false,
                      "false_per_10_min": round(10 * false / max(minutes, 1e-6), 2),
                      "false_per_10_min_cut_free": round(10 * sum(len(i["false"]) for i in infos if not i["cuts"])
                                                         / max(minutes_free, 1e-6), 2),
                      "minutes": round(minutes, 2), "natural_clips": len(natural), "cases": len(infos) - len(natural),
                      "missed_at": [f"{i['clip']}@{f}" for i in infos for f in i["missed"]],
                      "false_at": [f"{i['clip']}@{f}" for i in infos for f in i["false"]],
                      "people_without_crop": sum(len(i["people_without_crop"]) for i in infos),
                      "without_crop_at": [f"{i['clip']}:{p}" for i in infos for p in i["people_without_crop"]]}
    return result


def check_recognisers(names) -> None:
    """The protocol needs at least two recognisers (``names``: their names or specs), one of them not the students'
    teacher.

    Raises:
        ValueError: fewer than two (the message says how many and which)."""
    names = list(names)
    if len(names) < 2:
        raise ValueError(f"video protocol: expected at least two recognisers (one of them not the students' teacher), "
                         f"found {len(names)}: {', '.join(names) or 'none'}")


def recognisers(names: list[str]) -> dict:
    """The FR models named (``NAME`` or ``NAME:key=value;…``; ``mobilefacenet`` takes ``../shared``'s weights by
    default), by name.

    Raises:
        ValueError, FileNotFoundError: an unknown model, or one whose weights are missing (the message says which).
    """
    from streamfiqa.config import parse_spec
    from streamfiqa.eval.edc import with_shared_weights
    from streamfiqa.models.fr import create_fr

    out = {}
    for spec in names:
        label, name, args = parse_spec(spec)
        out[label] = create_fr(name, **with_shared_weights(name, args))
    return out
