"""The receiving end: ``streamfiqa listen`` prints (and saves) the events a publisher sends."""
from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

from streamfiqa.io.curve import curve_client

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(text: str, limit: int = 48) -> str:
    """A file-name fragment from a network string: letters, digits, ``_`` and ``-`` only (no ``/``, no ``..``)."""
    return _UNSAFE.sub("_", str(text))[:limit].strip("_") or "x"


def listen(endpoint: str, save: str | None = None, count: int = 0, timeout_s: float = 0.0,
           bind: bool = False, pull: bool = False, out=None, stop: threading.Event | None = None,
           server_key: str | None = None, secret_key: str | None = None, stats: dict | None = None) -> int:
    """Receive events from ``endpoint``, print one JSON line each, optionally save crops.

    Malformed messages (not 4 frames, bad UTF-8 or JSON, metadata not an object) are skipped and counted
    in ``stats["bad"]``; file names are built from a counter and sanitised fields only.

    Args:
        endpoint: where the publisher is (``tcp://127.0.0.1:5556``).
        save: directory to write ``events.jsonl`` and crops into.
        count: stop after this many events (0 = never).
        timeout_s: stop after this long without a message (0 = never).
        bind: bind instead of connect (when the publisher connects).
        pull: use a PULL socket (for a PUSH publisher) instead of SUB.
        out: text stream to print to (default stdout).
        stop: set it to stop (signal handlers do).
        server_key: the publisher's CURVE public key file (CURVE on).
        secret_key: this subscriber's CURVE key pair file (``.key_secret``; ephemeral when None).
        stats: filled with ``received`` and ``bad``.

    Returns:
        The number of events received.
    """
    import sys
    import time

    import zmq

    out = out or sys.stdout
    stop = stop or threading.Event()
    stats = stats if stats is not None else {}
    stats.update(received=0, bad=0)
    sock = zmq.Context.instance().socket(zmq.PULL if pull else zmq.SUB)
    if server_key:
        curve_client(sock, server_key, secret_key)
    if not pull:
        sock.setsockopt(zmq.SUBSCRIBE, b"face.")
    try:
        (sock.bind if bind else sock.connect)(endpoint)
    except zmq.ZMQError as exc:
        sock.close(linger=0)
        raise ValueError(f"listen {endpoint}: cannot {'bind' if bind else 'connect'}: {exc}") from None
    root = Path(save) if save else None
    if root:
        (root / "crops").mkdir(parents=True, exist_ok=True)
    received = 0
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    last = time.monotonic()
    try:
        while (not count or received < count) and not stop.is_set():
            if not poller.poll(200):
                if timeout_s and time.monotonic() - last > timeout_s:
                    break
                continue
            last = time.monotonic()
            parts = sock.recv_multipart()
            try:
                if len(parts) != 4:
                    raise ValueError(f"expected 4 frames, found {len(parts)}")
                topic, meta = parts[0].decode("utf-8"), json.loads(parts[1])
                if not isinstance(meta, dict):
                    raise ValueError(f"expected a JSON object, found {type(meta).__name__}")
            except (ValueError, UnicodeDecodeError) as exc:
                stats["bad"] += 1
                log.warning("skipping a malformed message (%d so far): %s", stats["bad"], exc)
                continue
            received += 1
            stats["received"] = received
            if root:
                stem = f"{received:05d}_{safe_name(topic)}_t{safe_name(meta.get('track_id'))}"
                if parts[2]:
                    (root / "crops" / f"{stem}.jpg").write_bytes(parts[2])
                    (root / "crops" / f"{stem}_aligned.png").write_bytes(parts[3])
                    meta["files"] = {"display": f"crops/{stem}.jpg", "aligned": f"crops/{stem}_aligned.png"}
                with open(root / "events.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps(meta) + "\n")
            print(json.dumps({"topic": topic, **meta}), file=out, flush=True)
    finally:
        sock.close(linger=0)
    return received
