"""streamfiqa command line (``streamfiqa …`` once installed, or ``python run_stream.py …`` from a checkout).

    streamfiqa SOURCE... [--pipeline cctv|enroll|offline] [--config FILE] [--out DIR]
                                   [--publish ENDPOINT] [--workers N] [--set key=value]...
    streamfiqa listen ENDPOINT [--save DIR] [--count N]
    streamfiqa demo [--out DIR]
    streamfiqa score PATH... [--scorer NAME] [--aligned] [--arg key=value]...
    streamfiqa models [--config FILE]
    streamfiqa degrade [PATH...] [--scorer NAME]
    streamfiqa eval [--ids DIR] [--scorer NAME]... [--fr NAME]... [--protocol P]... [--out DIR]
    streamfiqa distil [INPUT...] --out DIR [--arch mfn80] [--labels utility]
    streamfiqa quantize [--weights FILE | --student NAME] [--calibration DIR] [--out FILE]
    streamfiqa keys DIR
"""
from __future__ import annotations

import logging
import sys

from streamfiqa.cli import research, run, tools

#: Every subcommand (the first argument); anything else runs a pipeline over sources.
COMMANDS = {"listen": tools.cmd_listen, "demo": run.cmd_demo, "score": tools.cmd_score, "models": tools.cmd_models,
            "degrade": research.cmd_degrade, "eval": research.cmd_eval, "distil": research.cmd_distil,
            "quantize": research.cmd_quantize, "keys": tools.cmd_keys}


def version() -> str:
    """The installed package's version (the checkout's pyproject.toml when it runs uninstalled)."""
    from importlib import metadata

    try:
        return metadata.version("streamfiqa")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--version"]:
        print(f"streamfiqa {version()}")
        return 0
    if argv and argv[0] in COMMANDS:
        try:
            return COMMANDS[argv[0]](argv[1:])
        except (ValueError, OSError) as exc:  # a user's input (path, model, argument): one line, exit 2
            logging.getLogger("streamfiqa").error("%s", exc)
            return 2
    return run.cmd_run(argv, list(COMMANDS))

