"""The receiving end: ``streamfiqa listen`` prints (and saves) the events a publisher sends."""
from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

from streamfiqa.io.curve import check_port, curve_client

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(text: str, limit: int = 48) -> str:
    """A file-name fragment from a network string: letters, digits, ``_`` and ``-`` only (no ``/``, no ``..``)."""
    return _UNSAFE.sub("_", str(text))[:limit].strip("_") or "x"


#: Largest message ``listen`` accepts by default: a crop pair and its metadata are tens of kB.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def listen(endpoint: str, save: str | None = None, count: int = 0, timeout_s: float = 0.0,
           bind: bool = False, pull: bool = False, out=None, stop: threading.Event | None = None,
           server_key: str | None = None, secret_key: str | None = None, stats: dict | None = None,
           max_bytes: int = MAX_MESSAGE_BYTES) -> int:
    """Receive events from ``endpoint``, print one JSON line each, optionally save crops.

    Malformed messages (not 4 frames, bad UTF-8 or JSON, JSON nested too deep, metadata not an object) are skipped and
    counted in ``stats["bad"]``. A message over ``max_bytes`` never reaches memory: ZeroMQ drops its sender's
    connection (``MAXMSGSIZE``), counted in ``stats["dropped_peers"]``. Saved files are named from this run's stamp, a
    counter and sanitised fields only, so a folder used before keeps its files; CURVE handshakes that fail are counted
    in ``stats["handshake_failed"]`` and said.

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
        stats: filled with ``received``, ``bad``, ``dropped_peers`` and ``handshake_failed``.
        max_bytes: the largest message accepted (``MAXMSGSIZE``).

    Returns:
        The number of events received.
    """
    import os
    import sys
    import time

    import zmq
    from zmq.utils.monitor import recv_monitor_message

    check_port(endpoint, "listen")
    out = out or sys.stdout
    stop = stop or threading.Event()
    stats = stats if stats is not None else {}
    stats.update(received=0, bad=0, dropped_peers=0, handshake_failed=0)

    def open_socket():
        sock = zmq.Context.instance().socket(zmq.PULL if pull else zmq.SUB)
        sock.setsockopt(zmq.MAXMSGSIZE, int(max_bytes))
        if server_key:
            curve_client(sock, server_key, secret_key)
        if not pull:
            sock.setsockopt(zmq.SUBSCRIBE, b"face.")
        monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                                          | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        try:
            (sock.bind if bind else sock.connect)(endpoint)
        except zmq.ZMQError as exc:
            close_socket(sock, monitor)
            raise ValueError(f"listen {endpoint}: cannot {'bind' if bind else 'connect'}: {exc}") from None
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        return sock, monitor, poller

    def close_socket(sock, monitor):
        sock.disable_monitor()
        monitor.close(linger=0)
        sock.close(linger=0)

    sock, monitor, poller = open_socket()
    root = Path(save) if save else None
    run = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"  # this run's files never replace an earlier run's
    if root:
        (root / "crops").mkdir(parents=True, exist_ok=True)
    received = 0
    reopen_at = None  # when a dropped connection is made again
    last = time.monotonic()
    try:
        while (not count or received < count) and not stop.is_set():
            ready = dict(poller.poll(200))
            if monitor in ready and _peer_event(recv_monitor_message(monitor)["event"], stats, max_bytes) and not bind:
                reopen_at = time.monotonic() + 0.3
            if sock not in ready:
                if reopen_at is not None and time.monotonic() >= reopen_at:
                    # ZeroMQ does not reconnect after dropping an oversized message's sender. The messages that
                    # arrived before the drop reach the socket a moment after the drop is reported: they are read
                    # first (0.3 s). A fresh socket, not disconnect + connect on this one, keeps a half-received
                    # message of the dropped connection out of the new one.
                    close_socket(sock, monitor)
                    sock, monitor, poller = open_socket()
                    reopen_at = None
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
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                stats["bad"] += 1
                log.warning("skipping a malformed message (%d so far): %s", stats["bad"],
                            "JSON nested too deep" if isinstance(exc, RecursionError) else exc)
                continue
            received += 1
            stats["received"] = received
            if stats.pop("after_drop", False):
                log.warning("the publisher's connection dropped (%d so far) and it went on publishing: unless it "
                            "restarted, a message over --max-bytes (%d bytes) was lost with the drop",
                            stats["dropped_peers"], max_bytes)
            if root:
                stem = f"{run}_{received:05d}_{safe_name(topic)}_t{safe_name(meta.get('track_id'))}"
                try:
                    if parts[2]:
                        with open(root / "crops" / f"{stem}.jpg", "xb") as f:
                            f.write(parts[2])
                        with open(root / "crops" / f"{stem}_aligned.png", "xb") as f:
                            f.write(parts[3])
                        meta["files"] = {"display": f"crops/{stem}.jpg", "aligned": f"crops/{stem}_aligned.png"}
                    with open(root / "events.jsonl", "a", encoding="utf-8") as f:
                        f.write(json.dumps(meta) + "\n")
                except OSError as exc:  # a full disk: nothing more can be kept, and the sender does not wait
                    raise SaveFailed(f"listen --save {root}: cannot write event {received} ({exc.strerror or exc}); "
                                     f"the {received - 1} before it are saved") from None
            print(json.dumps({"topic": topic, **meta}), file=out, flush=True)
    finally:
        close_socket(sock, monitor)
    if not received and stats["handshake_failed"]:
        log.warning("nothing received: %d CURVE handshakes with %s failed (a wrong --curve-server-key, or this key "
                    "is not among the publisher's allowed clients)", stats["handshake_failed"], endpoint)
    elif not received and not stats["bad"] and not stop.is_set():
        # ZeroMQ connects in the background and never says an endpoint is wrong: the silence is all there is to go on
        log.warning("nothing received from %s in %.1f s: expected a publisher %s there (a run with --publish %s, "
                    "say); events published before this listener connected are not kept for it", endpoint,
                    timeout_s, "connecting" if bind else "bound", endpoint)
    return received


class SaveFailed(OSError):
    """``--save`` could not write an event (a full disk): the listener stops, the events before it kept."""


def _peer_event(event: int, stats: dict, max_bytes: int) -> bool:
    """Count a monitor event; True when the connection dropped (and must be made again)."""
    import zmq

    if event == zmq.EVENT_DISCONNECTED:
        stats["dropped_peers"] += 1
        # a publisher that ended closes its connection too: only a drop followed by more events is worth a warning
        log.info("the publisher's connection closed (%d so far): it ended or restarted, or ZeroMQ dropped it for a "
                 "message over %d bytes (--max-bytes); connecting again", stats["dropped_peers"], max_bytes)
        stats["after_drop"] = True
        return True
    else:
        stats["handshake_failed"] += 1
        if stats["handshake_failed"] == 1:
            log.warning("a CURVE handshake failed: the publisher's key (--curve-server-key) or this subscriber's is "
                        "not the one expected")
    return False
