"""Event sinks: ZeroMQ PUB/PUSH (a thread behind a bounded queue) and a directory of files.

A ZeroMQ message is four frames: ``[topic, metadata JSON, display JPEG, aligned PNG]`` with
topic ``face.<event>.<source>``; the crop frames are empty for events without a crop.
"""
from __future__ import annotations

import html
import json
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from streamfiqa.config import OutputConfig, PublishConfig
from streamfiqa.events import Event
from streamfiqa.io.curve import check_port, curve_server, is_loopback

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Receives events; ``close()`` flushes what is pending."""

    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


class ZmqPublisher:
    """Publishes events over ZeroMQ without ever blocking the caller, and counts every event lost.

    Events wait in a bounded queue (full → dropped, counted as ``dropped_queue``) for a sender thread.
    ``pub`` uses an XPUB socket with ``XPUB_NODROP``: a subscriber whose high-water mark is full makes the
    send fail instead of silently losing the message there; the sender retries for ``send_timeout_ms`` and
    then drops the event, counted as ``dropped_hwm`` (a PUB socket would drop it unseen). ``push`` likewise
    never blocks past ``send_timeout_ms``. The sender thread owns the socket and closes it (bounded linger)
    after sending what is queued, so shutdown never races a send.

    Args:
        cfg: endpoint, socket type (``pub`` or ``push``), bind or connect, HWM, queue size, CURVE keys.
    """

    def __init__(self, cfg: PublishConfig) -> None:
        import zmq

        if not cfg.endpoint:
            raise ValueError("publish.endpoint: expected an endpoint such as tcp://127.0.0.1:5556, found none")
        check_port(cfg.endpoint, "publish.endpoint")
        if not is_loopback(cfg.endpoint) and not cfg.curve_secret_key:
            way = "binding to" if cfg.bind else "connecting to"
            if not cfg.insecure:
                raise ValueError(f"publish.endpoint {cfg.endpoint}: face crops are biometric data; {way} an address "
                                 "beyond 127.0.0.1 needs CURVE (publish.curve_secret_key, see 'streamfiqa keys') or "
                                 "publish.insecure=true")
            log.warning("publish.insecure: %s %s sends face crops (biometric data) unencrypted and to anyone who "
                        "connects", way, cfg.endpoint)
        self.cfg = cfg
        self._ctx = zmq.Context()  # its own: closing it says whether ZeroMQ got every queued event out in time
        self._sock = self._ctx.socket(zmq.XPUB if cfg.socket == "pub" else zmq.PUSH)
        self._sock.setsockopt(zmq.SNDHWM, cfg.hwm)
        self._sock.setsockopt(zmq.LINGER, 2000)
        if cfg.socket == "pub":
            self._sock.setsockopt(zmq.XPUB_NODROP, 1)
        self._auth = None
        if cfg.curve_secret_key:
            self._auth = curve_server(self._sock, cfg.curve_secret_key, cfg.curve_clients)
        try:
            (self._sock.bind if cfg.bind else self._sock.connect)(cfg.endpoint)
        except zmq.ZMQError as exc:
            self._sock.close(linger=0)
            if self._auth is not None:
                self._auth.stop()
            self._ctx.term()
            raise ValueError(f"publish.endpoint {cfg.endpoint}: cannot {'bind' if cfg.bind else 'connect'}: "
                             f"{exc}") from None
        self.endpoint = self._sock.getsockopt(zmq.LAST_ENDPOINT).decode() if cfg.bind else cfg.endpoint
        self._queue: queue.Queue[Event | None] = queue.Queue(maxsize=cfg.queue_size)
        self.sent = self.dropped_queue = self.dropped_hwm = self.subscribers = 0
        #: False when ZeroMQ still held sent events as the close budget ran out (it does not say how many).
        self.close_complete = True
        self._deadline: float | None = None
        self._thread = threading.Thread(target=self._run, name="publish", daemon=True)
        self._thread.start()
        log.info("publishing on %s (%s%s)", self.endpoint, cfg.socket, ", CURVE" if cfg.curve_secret_key else "")

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

    def _subscriptions(self) -> None:
        """Read XPUB's subscribe/unsubscribe messages (keeps a subscriber count for the stats)."""
        import zmq

        while self.cfg.socket == "pub":
            try:
                msg = self._sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if msg[:1] == b"\x01":
                self.subscribers += 1
            elif msg[:1] == b"\x00":
                self.subscribers = max(self.subscribers - 1, 0)

    def _send(self, parts: list) -> bool:
        """Non-blocking sends retried until ``send_timeout_ms`` (or the shutdown deadline) passes."""
        import zmq

        give_up = time.monotonic() + self.cfg.send_timeout_ms / 1000
        while True:
            try:
                self._sock.send_multipart(parts, flags=zmq.NOBLOCK)
                return True
            except zmq.Again:
                now = time.monotonic()
                if now >= give_up or (self._deadline is not None and now >= self._deadline):
                    return False
                time.sleep(0.005)
                self._subscriptions()

    def _run(self) -> None:
        try:
            while True:
                try:
                    event = self._queue.get(timeout=0.1)
                except queue.Empty:
                    self._subscriptions()
                    continue
                if event is None:
                    return
                self._subscriptions()
                try:
                    jpg, png = event.encoded_crops(self.cfg.jpeg_quality)
                    parts = [event.topic.encode(), json.dumps(event.metadata(self.cfg.embedding)).encode(), jpg, png]
                    if self._send(parts):
                        self.sent += 1
                    else:
                        self.dropped_hwm += 1
                except Exception:  # noqa: BLE001 - one bad event must not stop publishing
                    self.dropped_queue += 1
                    log.exception("could not publish %s", event.topic)
        finally:
            # The owning thread closes it: no send can be in flight. What ZeroMQ still holds goes out for the rest of
            # close()'s budget (a peer that is reading gets it); ZeroMQ reports no count of what its queue held.
            left = (self._deadline - time.monotonic()) if self._deadline is not None else 0.5
            linger = min(max(left, 0.5), 10.0)
            started = time.monotonic()
            self._sock.close(linger=int(1000 * linger))
            if self._auth is not None:
                self._auth.stop()
            self._ctx.term()  # returns when every queued message left, or when the linger ran out
            if self.sent and time.monotonic() - started >= linger - 0.05:
                self.close_complete = False
                log.warning("publisher: ZeroMQ still held events when the close budget (%.1f s) ran out; some of the "
                            "%d sent may not have reached a subscriber (ZeroMQ does not say how many)", linger,
                            self.sent)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (each send at most ``send_timeout_ms``, all within ``timeout``), then close."""
        self._deadline = time.monotonic() + timeout
        while True:
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                if time.monotonic() > self._deadline:
                    try:  # make room for the stop marker: what is left is dropped and counted
                        self._queue.get_nowait()
                        self.dropped_queue += 1
                    except queue.Empty:
                        pass
        self._thread.join(timeout=max(self._deadline - time.monotonic(), 0) + 2)
        if self.dropped:
            log.warning("publisher: %d events not delivered (%d queue full, %d subscriber/peer not keeping up)",
                        self.dropped, self.dropped_queue, self.dropped_hwm)


class FileSink:
    """Writes ``DIR/events.jsonl`` and ``DIR/crops/<source>/...`` for every event, and ``DIR/manifest.json`` (the run's
    summary) at the end.

    One run writes a folder at a time (an OS lock on ``DIR/.lock``, held until :meth:`close`), an earlier run's events
    are never mixed in (refused unless ``overwrite``), and a run that wrote no event leaves no ``events.jsonl`` behind
    to block the next.

    Args:
        cfg: output directory and whether to write aligned crops too.
        jpeg_quality: JPEG quality of display crops.
        embedding: write each crop's FR embedding into its metadata line.
    """

    def __init__(self, cfg: OutputConfig, jpeg_quality: int = 90, embedding: bool = False) -> None:
        if not cfg.dir:
            raise ValueError("output.dir: expected a directory, found none")
        self.root = Path(cfg.dir)
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"output.dir {self.root}: expected a directory, found a file")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a read-only disk, no permission, a parent that is a file
            raise OSError(f"output.dir {self.root}: expected a directory this user can create, found that it "
                          f"cannot be ({exc.strerror or exc})") from None
        self._lock = _lock(self.root / ".lock")
        if (self.root / "events.jsonl").exists():
            if not cfg.overwrite:
                raise ValueError(f"output.dir {self.root}: it holds an earlier run's events.jsonl; runs never mix: "
                                 "choose another --out, or --set output.overwrite=true to replace that run")
            import shutil

            (self.root / "events.jsonl").unlink()
            shutil.rmtree(self.root / "crops", ignore_errors=True)
        (self.root / "crops").mkdir(parents=True, exist_ok=True)
        self.cfg, self.jpeg_quality, self.embedding = cfg, jpeg_quality, embedding
        self._log = open(self.root / "events.jsonl", "w", encoding="utf-8")
        self._n = self.lines = 0
        #: Events that could not be written (a full disk): counted, logged once.
        self.unwritten = 0

    def emit(self, event: Event) -> None:
        """Write the event's crops and append its metadata line. A write that fails (a full disk, a folder gone)
        costs this sink the event, counted in :attr:`unwritten`, never the run or the other sinks."""
        meta = event.metadata(self.embedding)
        try:
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
            self.lines += 1
        except OSError as exc:
            self.unwritten += 1
            if self.unwritten == 1:
                log.error("output.dir %s: cannot write (%s): this and later events that cannot be written are "
                          "counted (events_unwritten); the other sinks still get them", self.root,
                          exc.strerror or exc)

    def summarise(self, summary: dict) -> None:
        """Write the run's summary as ``DIR/manifest.json`` (logged, not raised, when it cannot be)."""
        try:
            (self.root / "manifest.json").write_text(json.dumps(summary, indent=1))
        except OSError as exc:
            (self.root / "manifest.json").unlink(missing_ok=True)  # no half a summary left to be read as one
            log.error("output.dir %s: cannot write manifest.json (%s)", self.root, exc.strerror or exc)

    def close(self) -> None:
        try:
            self._log.close()  # flushes: a full disk fails here too
        except OSError as exc:
            log.error("output.dir %s: cannot finish events.jsonl (%s)", self.root, exc.strerror or exc)
        if not self.lines and not self.unwritten:  # nothing written: nothing to block the next run
            (self.root / "events.jsonl").unlink(missing_ok=True)
            if not any((self.root / "crops").iterdir()):
                (self.root / "crops").rmdir()
        self._lock.close()  # releases the lock


def _lock(path: Path):
    """An exclusive OS lock on ``path``, held while the returned file stays open.

    Raises:
        ValueError: another process holds it.
    """
    import fcntl

    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise ValueError(f"output.dir {path.parent}: another run is writing there; choose another --out") from None
    return f


_FONT, _SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.42


def _fit(text: str, width: int) -> str:
    """``text`` as drawn within ``width`` pixels: whole if it fits, else its end after "..." (a clip's name tells
    clips apart by its end: ``…styletalk__andrew_clip_1``)."""
    if cv2.getTextSize(text, _FONT, _SCALE, 1)[0][0] <= width:
        return text
    for k in range(1, len(text)):
        short = "..." + text[k:]
        if cv2.getTextSize(short, _FONT, _SCALE, 1)[0][0] <= width:
            return short
    return "..."


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
            for j, text in enumerate((ev.source_id, f"#{ev.track_id} {q.decided_by} {q.score:.3f}")):
                cv2.putText(sheet, _fit(text, t - 6), (x + 3, y + t + 14 + 16 * j), _FONT, _SCALE, (0, 0, 0), 1,
                            cv2.LINE_AA)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(self.path), sheet):
                raise OSError(f"OpenCV could not write {self.path.name}")
            self._write_html()
        except OSError as exc:  # a full disk: the run's events are written; the sheet is lost, and said so
            log.error("contact sheet %s: cannot write it (%s)", self.path, exc.strerror or exc)
            return
        log.info("contact sheet: %s (%d tracks)", self.path, len(self.items))

    def _write_html(self) -> None:
        # a source's id is a file's name or the user's: escaped, as anything that reaches a page
        rows_html = "".join(
            f"<tr><td>{html.escape(e.source_id)}</td><td>{e.track_id}</td><td>{e.candidate.pts:.2f}</td>"
            f"<td>{e.candidate.score:.4f}</td><td>{html.escape(e.candidate.decided_by)}</td>"
            f"<td>{html.escape(json.dumps(e.candidate.components))}</td></tr>" for e in self.items)
        self.path.with_suffix(".html").write_text(
            f"<!doctype html><meta charset=utf-8><title>streamfiqa contact sheet</title>"
            f"<img src='{html.escape(self.path.name, quote=True)}'><table border=1><tr><th>source</th><th>track</th><th>pts</th>"
            f"<th>score</th><th>scorer</th><th>components</th></tr>{rows_html}</table>", encoding="utf-8")


def leaf_sinks(sinks: list) -> list:
    """The sinks events end in: a stage that wraps sinks (the persons merger) gives its own in its place."""
    return [leaf for s in sinks for leaf in getattr(s, "sinks", [s])]


def delivery_counts(sinks: list) -> dict:
    """What ``sinks`` could not deliver, as the stats and the run's summary give it: ``publish_dropped`` (events a
    publisher dropped), ``output_unwritten`` (events a file sink could not write) and ``publish_close_complete``."""
    leaves = leaf_sinks(sinks)
    return {"publish_dropped": sum(getattr(s, "dropped", 0) for s in leaves),
            "output_unwritten": sum(getattr(s, "unwritten", 0) for s in leaves),
            "publish_close_complete": all(getattr(s, "close_complete", True) for s in leaves)}


class LogSink:
    """Logs each event's topic and score (used when no other sink is configured)."""

    def emit(self, event) -> None:
        score = event.candidate.score if event.candidate is not None else float("nan")
        log.info("%s track %s score %.4f", event.topic, event.track_id, score)

    def close(self) -> None:
        pass
