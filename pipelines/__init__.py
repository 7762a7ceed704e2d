"""One thin module per user journey; each has ``DEFAULTS`` and ``run(sources, cfg, stop)``."""
import importlib

from streamfiqa.config import PIPELINES as NAMES

PIPELINES = {name: importlib.import_module(f"pipelines.{name}") for name in NAMES}
