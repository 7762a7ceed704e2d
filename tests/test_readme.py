"""The README's fenced ``bash`` commands: every one that needs no network, camera, GPU, Docker or installation runs
as written (``VIDEO.mp4`` and ``OUT`` stand for a real clip and a fresh folder) and exits 0."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

BIN = Path(sys.executable).parent
#: Why a command is not run here, by what it contains (checked in this order).
SKIP = {"pip install": "installs packages (CI's set-up step)", "pytest": "the test command itself",
        "docker": "needs Docker", "rtsp://": "needs a camera", "tcp://": "needs a publisher or subscriber",
        "--gpu": "needs a GPU", "http": "needs the network"}


def commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def runnable() -> list[str]:
    return [c for c in commands() if not any(k in c for k in SKIP)]


def test_the_readme_has_commands_and_a_reason_for_each_it_does_not_run():
    every = commands()
    assert any("streamfiqa demo" in c for c in every) and runnable()
    assert all(c in runnable() or any(k in c for k in SKIP) for c in every)


@pytest.mark.parametrize("command", runnable())
def test_readme_command_runs(command, synth_clip, tmp_path):
    clip, _ = synth_clip
    words = [w.replace(".venv/bin/", f"{BIN}/") for w in shlex.split(command)]
    words = [str(clip) if w == "VIDEO.mp4" else str(tmp_path / "out") if w == "OUT" else w for w in words]
    if words[0] == "streamfiqa":
        words[0] = str(BIN / "streamfiqa")
    p = subprocess.run(words, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"{command}\n{p.stderr[-2000:]}"
    assert "Traceback" not in p.stderr


def test_ci_runs_the_readme_s_set_up_and_test_commands_as_written():
    """`.ci/run` is what CI runs: the README's first two lines that set up and test, word for word (they are
    written twice; this keeps them one)."""
    every = commands()
    setup = next(c for c in every if "pip install" in c)
    tests = next(c for c in every if "pytest" in c)
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert setup in ci and tests in ci
