"""What to open: source arguments (``URI`` or ``ID=URI``) → specs with a kind, a unique id and liveness."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

KINDS = ("file", "rtsp", "http", "webcam", "folder")


@dataclass(frozen=True)
class SourceSpec:
    """What to open.

    Attributes:
        uri: path, URL or device.
        id: short id used in topics and file names (letters, digits, ``_``, ``-``).
        kind: one of :data:`KINDS`.
        live: live sources drop frames under load and reconnect; others do neither.
        start_s: files: start at this stream time (a source resumed elsewhere after a failure).
    """

    uri: str
    id: str
    kind: str
    live: bool
    start_s: float = 0.0


def _kind(uri: str) -> str:
    low = uri.lower()
    if low.startswith(("rtsp://", "rtsps://")):
        return "rtsp"
    if low.startswith(("http://", "https://")):
        return "http"
    if low.startswith("/dev/video") or re.fullmatch(r"v4l2:.*", low):
        return "webcam"
    path = Path(uri)
    if path.is_dir():
        return "folder"
    if path.is_file():
        return "file"
    raise FileNotFoundError(f"source {uri!r}: expected a video file, an image folder, rtsp://, http(s):// "
                            f"or /dev/videoN, found nothing at that path")


def parse_sources(args: list[str], live: str = "auto", strict: bool = True) -> list[SourceSpec]:
    """Turn CLI arguments (``URI`` or ``ID=URI``) into specs with unique ids.

    Args:
        args: the source arguments.
        live: ``auto`` (network and webcams are live), ``true`` or ``false``.
        strict: raise on a path that does not exist; else keep it as a ``missing`` source that fails
            on its own (one bad source never stops the others).

    Raises:
        FileNotFoundError: (strict) a path that does not exist.
    """
    specs, seen = [], set()
    for i, arg in enumerate(args):
        m = re.match(r"^([A-Za-z0-9_.-]+)=(.+)$", arg)
        sid, uri = (m.group(1), m.group(2)) if m and not Path(arg).exists() else (None, arg)
        try:
            kind = _kind(uri)
        except FileNotFoundError:
            if strict:
                raise
            kind = "missing"
        if sid is None:
            sid = Path(uri.rstrip("/")).stem if kind in ("file", "folder", "webcam", "missing") else f"{kind}{i}"
        sid = re.sub(r"[^A-Za-z0-9_-]", "_", sid) or f"src{i}"
        base, n = sid, 2
        while sid in seen:
            sid, n = f"{base}-{n}", n + 1
        seen.add(sid)
        is_live = kind in ("rtsp", "http", "webcam") if live == "auto" else live == "true" and kind != "missing"
        specs.append(SourceSpec(uri, sid, kind, is_live))
    return specs
