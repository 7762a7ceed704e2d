"""EDC / pAUC against hand-computed values, and the eval CLI on the deepface pairs."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, shared_path
from streamfiqa.evaluate import edc, pauc, threshold_at_fmr


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


def test_eval_cli_on_deepface_pairs(tmp_path):
    pairs = shared_path("data/faces/deepface/master.csv")
    out = subprocess.run([sys.executable, str(ROOT / "run_stream.py"), "eval", "--pairs", str(pairs),
                          "--scorer", "crop_iqa", "--out", str(tmp_path), "--degrade", "0"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0]["scorer"] == "crop_iqa" and 0 <= lines[0]["pauc_0.2"] <= 0.2
    report = json.loads((tmp_path / "edc.json").read_text())
    assert report["genuine"] + report["impostor"] == report["pairs"] == 300
    assert (tmp_path / "edc.png").stat().st_size > 1000
