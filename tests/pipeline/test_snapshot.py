"""The crowd clip and the demo clip give the events recorded in tests/data/events_snapshot.json (offline defaults
with the fast tier and the second look's FaceNet in float, named, a heavy-tier queue large enough that no keyframe is skipped
for timing). Timing fields are
ignored and scores compared to 1e-3, so a refactoring that keeps behaviour passes and a change of behaviour shows here.

Why float: the INT8 fast tier's integer kernels differ between CPUs (ONNX Runtime picks them by instruction set), and
its scores moved by 0.01-0.02 between two CI machines — enough to swap near-tied picks. Float kernels differ by about
1e-6, far under the tolerance, so the snapshot holds on any x86 machine; the INT8 models have their own tests. The
second look's INT8 FaceNet (``facenet_int8``, opt-in) moves its cosines by up to about 2e-3 from the float
model's, past the tolerance, and would move them differently on another CPU.

A change that means to alter the events records them anew, and says so in its commit:
``python tests/pipeline/test_snapshot.py --update``.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = ROOT / "tests" / "data" / "events_snapshot.json"
CROWD = ROOT.parent / "shared" / "data" / "videos" / "crowd_walk_1080p.mp4"
OVERRIDES = ["quality.scorer=fiqa_fast", "selection.second_look=facenet_onnx", "quality.keyframes.queue_size=256",
             "quality.keyframes.end_wait_s=60"]
TIMING = ("created", "wallclock")


def events_of(clip: Path) -> list[dict]:
    """The offline pipeline's events on ``clip``, timing fields removed."""
    from pipelines import PIPELINES
    from streamfiqa.eval.tracking import track_clip

    _, events = track_clip(str(clip), OVERRIDES, base=PIPELINES["offline"].DEFAULTS)
    return [{k: v for k, v in e.items() if k not in TIMING} for e in events]


def demo_clip(folder: Path) -> Path:
    from streamfiqa.eval.synth import make_clip

    path = folder / "demo.mp4"
    make_clip(path, faces=4, frames=100)
    return path


def _same(a, b, where: str) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-3), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("clip", ["demo", "crowd"])
def test_events_match_the_snapshot(clip, tmp_path):
    if clip == "crowd" and not CROWD.is_file():
        pytest.skip("needs ../shared/data/videos/crowd_walk_1080p.mp4 (development data beside the checkout)")
    path = CROWD if clip == "crowd" else demo_clip(tmp_path)
    events = events_of(path)
    _same(events, json.loads(SNAPSHOT.read_text())[clip], clip)
    if clip == "crowd":  # what the recorded events must show, whatever a new recording holds
        best = [e for e in events if e["event"] == "best"]
        assert all(e["schema"] == 1 for e in best) and len(best) >= 8
        assert sum(e["quality"]["gates_passed"] for e in best) >= 5
        # a track none of whose faces passed (a profile passing by) is still reported, saying which gates failed
        assert all(e["quality"]["gates_passed"] or e["quality"]["failed_gates"] for e in best)
        # the woman in the middle (box centre near x 940, y 680) is hidden behind a passer-by from 1.24 s to 3.80 s
        # (by looking): files wait 5 s to re-identify her, so she keeps one track and one crop (with 2 s: two)
        (her,) = [e for e in best if abs((e["box"][0] + e["box"][2]) / 2 - 940) < 40
                  and abs((e["box"][1] + e["box"][3]) / 2 - 680) < 30 and e["track"]["first_pts"] < 1.0]
        assert her["track"]["last_pts"] > 3.8


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/pipeline/test_snapshot.py --update")
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        data = {"demo": events_of(demo_clip(Path(tmp))), "crowd": events_of(CROWD)}
    SNAPSHOT.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    print({k: len(v) for k, v in data.items()})
