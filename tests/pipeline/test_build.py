"""Building a run: what happens to the process before the stages start."""
import os
import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_malloc_arenas_are_capped_unless_the_user_chose():
    code = "from streamfiqa.pipeline.build import fewer_malloc_arenas as f; print(f())"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    mine = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    theirs = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**env, "MALLOC_ARENA_MAX": "4"})
    assert mine.stdout.strip() == "True" and theirs.stdout.strip() == "False"
