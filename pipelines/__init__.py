"""One thin module per user journey; each has ``DEFAULTS`` and ``run(sources, cfg, stop)``.

A journey's ``DEFAULTS`` are its whole configuration: ``configs/NAME.yaml`` restates them with comments, and
``tests/test_config.py`` checks that the file changes nothing, so ``--pipeline NAME`` runs what the benches measure.
"""
import importlib

from streamfiqa.config import PIPELINES as NAMES

PIPELINES = {name: importlib.import_module(f"pipelines.{name}") for name in NAMES}
