"""Event sinks: ZeroMQ PUB/PUSH (a thread behind a bounded queue) and a directory of files.

A ZeroMQ message is four frames: ``[topic, metadata JSON, display JPEG, aligned PNG]`` with
topic ``face.<event>.<source>``; the crop frames are empty for events without a crop.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from streamfiqa.config import OutputConfig, PublishConfig
from streamfiqa.events import Event

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Receives events; ``close()`` flushes what is pending."""

    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


class ZmqPublisher:
    """Publishes events over ZeroMQ without ever blocking the caller.

    Events wait in a bounded queue (full → dropped and counted) for a sender thread; the
    socket's high-water mark bounds what a slow subscriber can hold (full → dropped and counted).

    Args:
        cfg: endpoint, socket type (``pub`` or ``push``), bind or connect, HWM, queue size.
    """

    def __init__(self, cfg: PublishConfig) -> None:
        import zmq

        if not cfg.endpoint:
            raise ValueError("publish.endpoint: expected an endpoint such as tcp://127.0.0.1:5556, found none")
        self.cfg = cfg
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PUB if cfg.socket == "pub" else zmq.PUSH)
        self._sock.setsockopt(zmq.SNDHWM, cfg.hwm)
        self._sock.setsockopt(zmq.LINGER, 2000)
        if cfg.socket == "push":
            self._sock.setsockopt(zmq.SNDTIMEO, cfg.send_timeout_ms)
        (self._sock.bind if cfg.bind else self._sock.connect)(cfg.endpoint)
        self.endpoint = self._sock.getsockopt(zmq.LAST_ENDPOINT).decode() if cfg.bind else cfg.endpoint
        self._queue: queue.Queue[Event | None] = queue.Queue(maxsize=cfg.queue_size)
        self.sent = self.dropped_queue = self.dropped_hwm = 0
        self._thread = threading.Thread(target=self._run, name="publish", daemon=True)
        self._thread.start()
        log.info("publishing on %s (%s)", self.endpoint, cfg.socket)

    @property
    def dropped(self) -> int:
        return self.dropped_queue + self.dropped_hwm

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def emit(self, event: Event) -> None:
        """Queue ``event`` for sending; drops it (counted) when the queue is full."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped_queue += 1

    def _run(self) -> None:
        import zmq

        flags = zmq.NOBLOCK if self.cfg.socket == "pub" else 0
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                jpg, png = event.encoded_crops(self.cfg.jpeg_quality)
                parts = [event.topic.encode(), json.dumps(event.metadata()).encode(), jpg, png]
                self._sock.send_multipart(parts, flags=flags)
                self.sent += 1
            except zmq.Again:
                self.dropped_hwm += 1
            except Exception:  # noqa: BLE001 - one bad event must not stop publishing
                log.exception("could not publish %s", event.topic)

    def close(self) -> None:
        """Send what is queued, then close the socket."""
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._sock.close()


class FileSink:
    """Writes ``DIR/events.jsonl`` and ``DIR/crops/<source>/...`` for every event.

    Args:
        cfg: output directory and whether to write aligned crops too.
        jpeg_quality: JPEG quality of display crops.
    """

    def __init__(self, cfg: OutputConfig, jpeg_quality: int = 90) -> None:
        if not cfg.dir:
            raise ValueError("output.dir: expected a directory, found none")
        self.root = Path(cfg.dir)
        (self.root / "crops").mkdir(parents=True, exist_ok=True)
        self.cfg, self.jpeg_quality = cfg, jpeg_quality
        self._log = open(self.root / "events.jsonl", "a", encoding="utf-8")
        self._n = 0

    def emit(self, event: Event) -> None:
        """Write the event's crops and append its metadata line."""
        meta = event.metadata()
        if event.candidate is not None:
            folder = self.root / "crops" / event.source_id
            folder.mkdir(exist_ok=True)
            self._n += 1
            stem = f"{event.kind}_t{event.track_id}_f{event.candidate.frame_index}_{self._n:05d}"
            jpg, png = event.encoded_crops(self.jpeg_quality)
            (folder / f"{stem}.jpg").write_bytes(jpg)
            meta["files"] = {"display": f"crops/{event.source_id}/{stem}.jpg"}
            if self.cfg.save_aligned:
                (folder / f"{stem}_aligned.png").write_bytes(png)
                meta["files"]["aligned"] = f"crops/{event.source_id}/{stem}_aligned.png"
        self._log.write(json.dumps(meta) + "\n")
        self._log.flush()

    def close(self) -> None:
        self._log.close()


def listen(endpoint: str, save: str | None = None, count: int = 0, timeout_s: float = 0.0,
           bind: bool = False, pull: bool = False, out=None) -> int:
    """Receive events from ``endpoint``, print one JSON line each, optionally save crops.

    Args:
        endpoint: where the publisher is (``tcp://127.0.0.1:5556``).
        save: directory to write ``events.jsonl`` and crops into.
        count: stop after this many events (0 = never).
        timeout_s: stop after this long without a message (0 = never).
        bind: bind instead of connect (when the publisher connects).
        pull: use a PULL socket (for a PUSH publisher) instead of SUB.
        out: text stream to print to (default stdout).

    Returns:
        The number of events received.
    """
    import sys

    import zmq

    out = out or sys.stdout
    sock = zmq.Context.instance().socket(zmq.PULL if pull else zmq.SUB)
    if not pull:
        sock.setsockopt(zmq.SUBSCRIBE, b"face.")
    (sock.bind if bind else sock.connect)(endpoint)
    root = Path(save) if save else None
    if root:
        (root / "crops").mkdir(parents=True, exist_ok=True)
    received = 0
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    try:
        while not count or received < count:
            if not poller.poll(int(timeout_s * 1000) if timeout_s else None):
                break
            parts = sock.recv_multipart()
            if len(parts) != 4:
                log.warning("ignoring a message of %d frames; expected 4", len(parts))
                continue
            topic, meta = parts[0].decode(), json.loads(parts[1])
            received += 1
            if root:
                stem = f"{received:05d}_{topic.replace('.', '_')}_t{meta.get('track_id')}"
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


class ContactSheet:
    """Collects ``best`` events and writes a PNG grid (and an HTML page) of them on close.

    Args:
        path: PNG path; the HTML goes beside it with the same stem.
        tile: side of each tile in pixels.
        columns: tiles per row.
    """

    def __init__(self, path: str | Path, tile: int = 160, columns: int = 8) -> None:
        self.path, self.tile, self.columns = Path(path), tile, columns
        self.items: list[Event] = []

    def emit(self, event: Event) -> None:
        if event.kind == "best" and event.candidate is not None:
            self.items.append(event)

    def close(self) -> None:
        if not self.items:
            log.info("contact sheet: no best crops to show")
            return
        self.items.sort(key=lambda e: (e.source_id, e.track_id))
        t, cols = self.tile, self.columns
        rows = (len(self.items) + cols - 1) // cols
        sheet = np.full((rows * (t + 36), cols * t, 3), 255, np.uint8)
        for i, ev in enumerate(self.items):
            r, c = divmod(i, cols)
            y, x = r * (t + 36), c * t
            sheet[y:y + t, x:x + t] = cv2.resize(ev.candidate.display, (t, t), interpolation=cv2.INTER_AREA)
            q = ev.candidate
            for j, text in enumerate((f"{ev.source_id} #{ev.track_id}", f"{q.decided_by} {q.score:.3f}")):
                cv2.putText(sheet, text, (x + 3, y + t + 14 + 16 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                            (0, 0, 0), 1, cv2.LINE_AA)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(self.path), sheet)
        rows_html = "".join(
            f"<tr><td>{e.source_id}</td><td>{e.track_id}</td><td>{e.candidate.pts:.2f}</td>"
            f"<td>{e.candidate.score:.4f}</td><td>{e.candidate.decided_by}</td>"
            f"<td>{json.dumps(e.candidate.components)}</td></tr>" for e in self.items)
        self.path.with_suffix(".html").write_text(
            f"<!doctype html><meta charset=utf-8><title>streamfiqa contact sheet</title>"
            f"<img src='{self.path.name}'><table border=1><tr><th>source</th><th>track</th><th>pts</th>"
            f"<th>score</th><th>scorer</th><th>components</th></tr>{rows_html}</table>", encoding="utf-8")
        log.info("contact sheet: %s (%d tracks)", self.path, len(self.items))
