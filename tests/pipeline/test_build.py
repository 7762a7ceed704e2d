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


@pytest.mark.parametrize("live", [True, False])
def test_live_cameras_get_the_second_look_s_model_before_they_open(live, synth_clip, monkeypatch):
    """At a live camera's first track end, loading (on a fresh machine: exporting, 2–3 s of a core) would lag
    every camera; a live run loads it while being built. A file keeps it for its first track's end."""
    from conftest import free_port
    from pipelines import cctv
    from streamfiqa.config import load_config
    from streamfiqa.io.specs import parse_sources
    from streamfiqa.pipeline.build import build_runner
    from streamfiqa.quality import second_look

    monkeypatch.setattr(second_look, "_MODELS", {})  # none loaded yet in this process
    source = f"rtsp://127.0.0.1:{free_port()}/cam" if live else str(synth_clip[0])
    build_runner(load_config(base=cctv.DEFAULTS), parse_sources([source]), [])  # builds; opens no source
    assert [name for name, _ in second_look._MODELS] == (["facenet_onnx"] if live else [])
