"""One thin module per user journey; each has ``DEFAULTS`` and ``run(sources, cfg, stop)``."""
from pipelines import cctv, enroll, offline

PIPELINES = {"cctv": cctv, "enroll": enroll, "offline": offline}
