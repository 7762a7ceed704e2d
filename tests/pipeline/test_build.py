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


@pytest.mark.parametrize("rank, warned", [("typical", True), ("fast", False)])
def test_a_heavy_tier_that_would_decide_nothing_is_said(rank, warned, caplog):
    """The heavy tier re-scores keyframes the fast tier picks; the typicality ranking never looks at them."""
    import logging

    from pipelines import offline
    from streamfiqa.config import load_config
    from streamfiqa.pipeline.build import build_stages

    cfg = load_config(overrides=["quality.heavy=fiqa_heavy", f"selection.rank={rank}"], base=offline.DEFAULTS)
    with caplog.at_level(logging.WARNING, logger="streamfiqa.pipeline.build"):
        stages = build_stages(cfg)
    assert stages.heavy is not None
    assert any("decide nothing" in r.getMessage() for r in caplog.records) is warned
