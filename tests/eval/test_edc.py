"""EDC / pAUC against hand-computed values, calibration, and the eval CLI on identity-labelled photos."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, shared_path
from streamfiqa.eval.edc import edc, pauc, threshold_at_fmr


def test_threshold_is_fixed_once_at_the_fmr():
    imp = np.arange(1000) / 1000.0
    assert threshold_at_fmr(imp, 1e-3) == 0.998  # exactly one impostor (0.999) above it
    assert threshold_at_fmr(np.array([0.1, 0.5]), 1e-3) == 0.5


def test_edc_discards_lowest_quality_first_with_ties_together():
    sim = np.array([0.9, 0.2, 0.8, 0.3, 0.95, 0.1, 0.4])
    gen = np.array([True, True, True, True, True, False, False])
    q = np.array([0.9, 0.1, 0.5, 0.5, 0.8, 0.0, 0.0])
    out = edc(sim, q, gen)
    assert out["threshold"] == 0.4  # max impostor: FMR 1e-3 of 2 impostors
    # genuine sorted by quality: 0.1 (fail), 0.5 & 0.5 (tie: 0.8 ok, 0.3 fail), 0.8, 0.9
    assert out["discard"] == [0.0, 0.2, 0.6, 0.8, 1.0]
    assert out["fnmr"] == [0.4, 0.25, 0.0, 0.0, 0.0]
    assert out["pauc_0.2"] == pytest.approx(0.2 * 0.4)
    assert out["pauc_0.3"] == pytest.approx(0.2 * 0.4 + 0.1 * 0.25)
    assert pauc([0.0, 0.5], [1.0, 0.0], 1.0) == pytest.approx(0.5)


def test_normalised_pauc_random_is_one_and_oracle_is_lower():
    from streamfiqa.eval.edc import edc_table

    rng = np.random.default_rng(0)
    n = 400
    ids = np.repeat(np.arange(100), 4)
    a, b = np.triu_indices(n, 1)
    gen = ids[a] == ids[b]
    sim = np.where(gen, rng.normal(0.5, 0.2, len(a)), rng.normal(0.0, 0.1, len(a)))
    q_img = rng.random(n)
    table = edc_table(sim, gen, a, b, {"noise": q_img})
    assert abs(table["random"]["norm_0.3"] - 1) < 0.2
    assert table["oracle"]["norm_0.3"] < 0.5 * table["random"]["norm_0.3"]


def test_calibration_round_trip(tmp_path):
    from streamfiqa.config import load_config
    from streamfiqa.eval.edc import calibrate, edc
    from streamfiqa.quality.calibration import min_score, quality_threshold

    sim = np.array([0.9, 0.2, 0.8, 0.3, 0.95, 0.1, 0.4])
    gen = np.array([True, True, True, True, True, False, False])
    q = np.array([0.9, 0.1, 0.5, 0.5, 0.8, 0.0, 0.0])
    curve = edc(sim, q, gen)
    cal = calibrate(curve, q[gen], max_discard=0.6)
    assert cal["fnmr"] == 0.0 and cal["discard"] == 0.6 and cal["threshold"] == 0.8
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"calibration": {"fiqa_fast": {"mobilefacenet": cal}}}))
    assert quality_threshold(path, "fiqa_fast") == 0.8
    cfg = load_config(None, [f"quality.min_score={path}"])
    assert min_score(cfg.quality) == 0.8
    with pytest.raises(ValueError, match="no calibration for scorer 'crop_iqa'"):
        quality_threshold(path, "crop_iqa")


def test_eval_cli_on_identities(tmp_path):
    ids = shared_path("data/faces/celeba_ids")
    out = subprocess.run([sys.executable, str(ROOT / "run_stream.py"), "eval", "--ids", str(ids), "--max-photos", "120",
                          "--scorer", "fiqa_fast", "--fr", "mobilefacenet", "--protocol", "clean", "--out",
                          str(tmp_path), "--impostors", "5000"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines() if '"scorer"' in line]
    names = {r["scorer"] for r in rows}
    assert names == {"fiqa_fast", "random", "oracle"}
    oracle = next(r for r in rows if r["scorer"] == "oracle")
    assert oracle["norm_0.3"] <= min(r["norm_0.3"] for r in rows)
    cal = json.loads((tmp_path / "calibration.json").read_text())
    assert "threshold" in cal["calibration"]["fiqa_fast"]["mobilefacenet"]
    assert (tmp_path / "edc.png").stat().st_size > 1000
