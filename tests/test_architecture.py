"""The layout's contracts (pyproject.toml, [tool.importlinter]) hold: the runtime never imports the research
toolkit, the library never imports engines/ or bench/, and there are no import circles."""
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "expected import-linter's lint-imports beside this Python (pip install -e '.[dev]'), found none"
    out = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout
