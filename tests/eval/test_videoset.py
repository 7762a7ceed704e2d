"""A user's own folder of clips for ``streamfiqa eval --videos``: a manifest it cannot use, or a half with no clip,
is one line and exit 2, not a traceback or an empty report that exits 0."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, write_clip
from streamfiqa.eval.videoset import read_video_set


def _eval(folder, *args):
    return subprocess.run([sys.executable, str(ROOT / "run_stream.py"), "eval", "--videos", str(folder), "--out",
                           str(folder / "out"), *args], capture_output=True, text=True, timeout=120)


def test_a_manifest_is_checked_and_an_empty_half_is_said(tmp_path):
    write_clip(tmp_path / "door.mp4", [np.zeros((64, 64, 3), np.uint8)] * 3)
    (tmp_path / "MANIFEST.tsv").write_text("filename\ndoor.mp4\n")
    with pytest.raises(ValueError, match="columns filename and fps"):
        read_video_set(tmp_path)
    (tmp_path / "MANIFEST.tsv").write_text("filename\tfps\ndoor.mp4\t25\nhall.mp4\t25\n")
    with pytest.raises(ValueError, match="line 3: .* 'hall.mp4' \\(missing\\)"):
        read_video_set(tmp_path)
    (tmp_path / "MANIFEST.tsv").write_text("filename\tfps\ndoor.mp4\t25\n")
    assert [c.name for c in read_video_set(tmp_path)] == ["door.mp4"]
    # one person: the split by person leaves the default (test) half empty
    out = _eval(tmp_path)
    assert out.returncode == 2 and "found none of its 1 clip(s) of 1 person(s); --half all" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    # one recogniser: said before any case is made or any clip runs, and nothing is written
    out = _eval(tmp_path, "--half", "all", "--fr", "sface")
    assert out.returncode == 2 and "expected at least two recognisers" in out.stderr and "found 1: sface" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "out").exists()
