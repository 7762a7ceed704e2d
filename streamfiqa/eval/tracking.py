"""MOT-style tracking metrics (IDF1, identity switches, fragmentations) and a harness that runs the real
pipeline on a clip with ground truth (:func:`streamfiqa.eval.synth.make_scene`).

Definitions follow CLEAR-MOT and Ristani et al. (2016): per frame, ground-truth boxes and confirmed track
boxes are matched one-to-one at IoU ≥ ``iou``; an identity switch is a ground-truth person matched to a
different track than the last time it was matched; a fragmentation is a person's trajectory resuming after
frames in which it was present but unmatched (both counted within a shot: tracks end at a cut by design);
IDF1 = 2·IDTP / (GT + predictions) with the global one-to-one
person ↔ track assignment that maximises IDTP. (``motmetrics`` computes the same, but its last release
needs NumPy 1 and pandas; these few lines need neither.)
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from streamfiqa.config import load_config
from streamfiqa.io.specs import parse_sources
from streamfiqa.pipeline.build import build_runner
from streamfiqa.track.matching import iou_matrix


def mot_metrics(truth: list, predicted: list, iou: float = 0.5, shots: list | None = None) -> dict:
    """Compare per-frame ground truth with per-frame predictions.

    Args:
        truth: per frame, rows ``(person, x1, y1, x2, y2)``.
        predicted: per frame, rows ``(track_id, x1, y1, x2, y2)``.
        iou: lowest IoU of a match.
        shots: first frame of each shot (for ``tracks_per_person_shot``).
    """
    last: dict[int, int] = {}
    was_matched: dict[int, bool] = {}
    switches = frags = matches = 0
    pair_counts: dict[tuple[int, int], int] = {}
    per_shot: dict[tuple[int, int], set] = {}
    n_gt = sum(len(r) for r in truth)
    n_pred = sum(len(r) for r in predicted)
    starts = set(shots or [])
    for f, (gt, pr) in enumerate(zip(truth, predicted)):
        if f in starts:  # a new shot: every track is expected to end, so identities start afresh
            last.clear()
            was_matched.clear()
        gt, pr = np.asarray(gt, np.float32).reshape(-1, 5), np.asarray(pr, np.float32).reshape(-1, 5)
        matched_people = set()
        if len(gt) and len(pr):
            ov = iou_matrix(gt[:, 1:], pr[:, 1:])
            rows, cols = linear_sum_assignment(-ov)
            for r, c in zip(rows, cols):
                if ov[r, c] < iou:
                    continue
                person, track = int(gt[r, 0]), int(pr[c, 0])
                matches += 1
                matched_people.add(person)
                if person in last and last[person] != track:
                    switches += 1
                if person in was_matched and not was_matched[person]:
                    frags += 1
                last[person] = track
                shot = sum(1 for s in (shots or [0]) if s <= f) - 1
                pair_counts[((person, shot), track)] = pair_counts.get(((person, shot), track), 0) + 1
                per_shot.setdefault((person, shot), set()).add(track)
        for row in gt:
            person = int(row[0])
            if person in was_matched or person in matched_people:
                was_matched[person] = person in matched_people
    people = sorted({p for p, _ in pair_counts})  # identities are (person, shot): a cut starts new tracks
    tracks = sorted({t for _, t in pair_counts})
    idtp = 0
    if people and tracks:
        m = np.zeros((len(people), len(tracks)))
        for (p, t), n in pair_counts.items():
            m[people.index(p), tracks.index(t)] = n
        r, c = linear_sum_assignment(-m)
        idtp = int(m[r, c].sum())
    return {"idf1": round(2 * idtp / max(n_gt + n_pred, 1), 4), "id_switches": switches, "fragmentations": frags,
            "recall": round(matches / max(n_gt, 1), 4), "precision": round(matches / max(n_pred, 1), 4),
            "gt_boxes": n_gt, "predicted_boxes": n_pred, "tracks": len(tracks),
            "tracks_per_person_shot": {f"{p}@{s}": len(t) for (p, s), t in sorted(per_shot.items())}}


def observe_clip(path: str, observe, overrides: list[str] | None = None, base: dict | None = None,
                 raw: bool = False) -> list:
    """Run the pipeline (``base``: a pipeline's ``DEFAULTS``) on the file ``path`` with ``observe(sid, sf,
    assignments, confirmed)`` called on every processed frame; returns the events (as metadata dicts, or ``raw``:
    the :class:`~streamfiqa.events.Event` objects, crops and all)."""
    cfg = load_config(None, [*(overrides or []), "stats_interval_s=0", "progress=false"], base=base)
    events: list = []

    class _Collect:
        dropped = 0

        def emit(self, event) -> None:
            events.append(event if raw else event.metadata())

        def close(self) -> None:
            pass

    runner = build_runner(cfg, parse_sources([str(path)], "false"), [_Collect()])
    runner.observers.append(observe)
    runner.run()
    return events


def track_clip(path: str, overrides: list[str] | None = None, base: dict | None = None) -> tuple[list, list]:
    """Run the pipeline (``base``: a pipeline's ``DEFAULTS``) on ``path``; returns per-frame confirmed
    ``(track_id, box)`` rows and the events (as metadata dicts)."""
    rows: dict[int, list] = {}
    events = observe_clip(path, lambda sid, sf, assignments, confirmed: rows.setdefault(sf.frame.index, []).extend(
        (tid, *sf.faces.boxes[d]) for tid, d in assignments if tid in confirmed), overrides, base)
    n = max(rows) + 1 if rows else 0
    return [rows.get(i, []) for i in range(n)], events
