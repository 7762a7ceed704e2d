"""Frame sources: files, RTSP, HTTP/HLS, webcams (PyAV) and image folders.

Each source decodes in its own thread into a small bounded queue. Live sources drop the
oldest queued frame when processing falls behind and reconnect with capped exponential
backoff; files and folders never drop and end at EOF.
"""
from __future__ import annotations

import collections
import heapq
import logging
import threading
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from streamfiqa.config import SourcesConfig
from streamfiqa.io.media import IMAGE_EXTENSIONS, is_image
from streamfiqa.io.shots import ShotCutDetector
from streamfiqa.io.specs import SourceSpec
from streamfiqa.types import Frame

log = logging.getLogger(__name__)

#: Recordings: decoded frames held back so that their times can be put in order, and how far behind the newest
#: (seconds) a time may be to be put in order rather than taken for a clock that started again
#: (:meth:`Source._in_time_order`).
REORDER_WINDOW, REORDER_REACH_S = 8, 1.0
#: A display rotation (degrees counter-clockwise, as PyAV reads it) → the OpenCV turn that shows the frame upright.
_TURNS = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
_TURN_WORDS = {90: "a quarter turn counter-clockwise", 180: "a half turn", 270: "a quarter turn clockwise"}


def _no_protocol(exc: BaseException) -> bool:
    """Whether ``exc`` is FFmpeg saying it has no protocol for the URL's scheme."""
    import av

    return isinstance(exc, av.error.ProtocolNotFoundError)


def _timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is FFmpeg interrupted by PyAV's open or read timeout."""
    import av

    return isinstance(exc, av.error.ExitError)


def _av_version() -> str:
    import av

    return av.__version__


def display_turn(av_frame) -> int:
    """The quarter turn (0, 90, 180 or 270 degrees counter-clockwise) a player applies to ``av_frame``: phones store
    portrait video as landscape frames plus a display matrix that rotates them, and a decoder leaves them on their
    side. A rotation that is not a quarter turn (within 2 degrees) is not applied: 0."""
    angle = float(getattr(av_frame, "rotation", 0) or 0)
    quarter = round(angle / 90) * 90
    return quarter % 360 if abs(angle - quarter) <= 2 else 0


def to_bgr(av_frame) -> np.ndarray:
    """A decoded frame as a BGR uint8 array, as stored (:meth:`Source._as_shown` turns and stretches it). Limited-range
    4:2:0 frames (nearly every camera and file) are converted by OpenCV from the raw planes: about 40 % less CPU than
    libswscale's ``bgr24`` at 1080p on 2 cores, the same BT.601 matrix (mean |Δ| < 1 grey level)."""
    if av_frame.format.name == "yuv420p" and av_frame.width % 2 == 0 and av_frame.height % 2 == 0:
        return cv2.cvtColor(av_frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420)
    return av_frame.to_ndarray(format="bgr24")


def square_size(width: int, height: int, sample_aspect: float) -> tuple[int, int]:
    """``(width, height)`` of a frame of non-square pixels (``sample_aspect`` = a pixel's width / height) shown with
    square ones: the short side grows, so no pixel is lost (a D1 704×576 at 12:11 → 768×576)."""
    if sample_aspect >= 1.0:
        return int(round(width * sample_aspect)), height
    return width, int(round(height / sample_aspect))


def _turned(image: np.ndarray, quarter: int) -> np.ndarray:
    """``image`` turned ``quarter`` degrees counter-clockwise (0, 90, 180 or 270)."""
    return cv2.rotate(image, _TURNS[quarter]) if quarter else image


def turn_upright(image: np.ndarray, av_frame) -> np.ndarray:
    """``image`` (``av_frame`` converted) turned as ``av_frame``'s display matrix says (:func:`display_turn`)."""
    return _turned(image, display_turn(av_frame))


class Source:
    """Decodes one source in a background thread; :meth:`read` hands frames out.

    Args:
        spec: what to open.
        cfg: reading options (queue size, stride, timeouts, backoff, RTSP transport).
        wake: event set whenever a frame is queued or the source finishes.
    """

    def __init__(self, spec: SourceSpec, cfg: SourcesConfig, wake: threading.Event | None = None) -> None:
        self.spec, self.cfg = spec, cfg
        self.wake = wake or threading.Event()
        self._queue: collections.deque[Frame] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"decode-{spec.id}", daemon=True)
        self._done = False
        self.error: str | None = None
        self.total_frames = 0
        self.decoded = self.dropped = self.skipped = self.reconnects = 0
        self.decode_s = 0.0
        self.turned: int | None = None  # the display rotation applied (degrees counter-clockwise), once known
        self.sample_aspect = 1.0  # the pixels' width / height, when frames are stretched to square pixels
        self.interlaced = False  # its first frame kept was interlaced (passed on as decoded)
        self._streams_told = False  # a file of several video streams: said once which is read
        self._pts_offset = 0.0
        self._last_pts = -np.inf
        self._due = -np.inf       # max_fps: stream time from which the next frame is kept
        self._anchor = np.inf
        self._resume_s = spec.start_s if spec.kind == "file" else 0.0  # first open only (not on reconnects)
        self._finite = False      # network streams: a known duration (HLS VOD), so its end is the end
        self.lag_skipped = 0      # live packets dropped unseen to catch up (to the next keyframe)
        self.decode_errors = 0    # packets that failed to decode (skipped)
        self.frames_lost = 0      # files: frames short of the container's count at the end (a corrupt stretch)
        self.unread = 0           # files and folders: frames not reached because the run was stopped
        self.timestamps_reordered = 0  # a damaged recording's frames whose own time came out of order, put in order
        self.frames_damaged = 0   # frames kept that were decoded from a damaged stretch (Frame.damaged)
        self.timestamps_repaired = 0  # frames whose own time went back or repeated, timed after the last instead
        self._last_failure: str | None = None  # a live source's last reason to reconnect (scrubbed)
        cuts = cfg.shot_cuts == "true" or (cfg.shot_cuts == "auto" and not spec.live)
        self._shots = None
        self._held: Frame | None = None  # with cuts detected, the frame whose step the next frame decides
        if cuts:
            self._shots = ShotCutDetector(cfg.cut_threshold, step=cfg.cut_step, step_ratio=cfg.cut_step_ratio)

    def start(self) -> "Source":
        """Start decoding."""
        if self.spec.kind == "file" and self.spec.live and not self.cfg.realtime:
            log.warning("%s: a file read as live (sources.live=true) is decoded as fast as it can be, so the frames "
                        "the pipeline cannot keep up with are dropped (counted), and at its end it is opened again as "
                        "a camera would be reconnected, until stopped; with sources.realtime=true it stands in for a "
                        "camera at its own frame rate", self.spec.id)
        self._thread.start()
        return self

    @property
    def _real_time(self) -> bool:
        """A live stream that runs in real time (not a recording served over the network: HLS VOD, a file over
        HTTP, which is read at the pipeline's pace as a file is)."""
        return self.spec.live and not self._finite

    @property
    def started(self) -> bool:
        """Whether :meth:`start` was called (files may wait their turn: ``sources.max_open_files``)."""
        return self._thread.ident is not None

    def read(self) -> Frame | None:
        """The oldest queued frame, or None when none is ready (never blocks)."""
        with self._cond:
            if not self._queue:
                return None
            frame = self._queue.popleft()
            self._cond.notify_all()
            return frame

    @property
    def finished(self) -> bool:
        """True once decoding has ended for good and the queue is empty."""
        with self._cond:
            return self._done and not self._queue

    @property
    def last_pts(self) -> float:
        """Stream time of the newest decoded frame (seconds; monotonic across reconnects)."""
        return float(self._last_pts) if np.isfinite(self._last_pts) else 0.0

    @property
    def native_thread_id(self) -> int | None:
        """The OS id of the decode thread (None before :meth:`start`): what per-thread CPU accounting sees."""
        return self._thread.native_id

    @property
    def depth(self) -> int:
        return len(self._queue)

    def stop(self) -> None:
        """Decode no further frame (returns at once; :meth:`close` waits for the thread)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Stop decoding and wait for the thread (a file or folder never started: all its frames count as unread)."""
        self.stop()
        if not self.started:
            self._count_unstarted()
        if self._thread.is_alive():
            # A live source may sit in a network call until its own timeout; the thread is a daemon.
            self._thread.join(timeout=2 if self.spec.live else 10)
        if self.spec.live and self.error is None and self.decoded == 0 and self._last_failure is not None:
            # a camera that never gave a frame until the run was stopped (a wrong URL, a camera down) failed: the
            # run says so in its exit code and summary rather than ending as a quiet success with no frames
            self.error = f"never delivered a frame ({self.reconnects} reconnects; last: {self._last_failure})"
            log.error("%s: %s", self.spec.id, self.error)

    def _put(self, frame: Frame) -> None:
        if self._shots is not None and self.spec.kind != "folder":
            frame.cut, frame.change = self._shots.observe(frame.image)
            frame.thumbs = self._shots.thumbs
            if self._shots.step > 0:  # whether a frame is a step is known from the next one: each goes on one late
                frame, self._held = self._held, frame
                if frame is None:
                    return
                frame.step = self._shots.was_step()
        self._enqueue(frame)

    def _release(self) -> None:
        """The frame held for its step goes on (the stream ended or broke: no next frame will come)."""
        frame, self._held = self._held, None
        if frame is not None:
            self._enqueue(frame)

    def _enqueue(self, frame: Frame) -> None:
        with self._cond:
            if self._stop.is_set():
                return  # decoded after the run was stopped: not processed, and no drop either
            if self._real_time:  # a recording (HLS VOD) waits for the pipeline, as a file does
                if len(self._queue) >= self.cfg.queue_size:
                    self._queue.popleft()
                    self.dropped += 1
            else:
                while len(self._queue) >= self.cfg.queue_size and not self._stop.is_set():
                    self._cond.wait(0.1)
            self._queue.append(frame)
        self.wake.set()

    def _keep(self, index: int, pts: float) -> bool:
        """Whether frame ``index`` (0-based, among every frame the source went through) at ``pts`` is processed
        (``stride``, ``max_fps``); one that is not is counted as skipped."""
        if index % max(self.cfg.stride, 1):
            self.skipped += 1
            return False
        if self.cfg.max_fps > 0:
            # Frames are due on a grid of 1/max_fps, not 1/max_fps after the last kept one: from 25 fps, max_fps 10
            # keeps 10 a second (0, .12, .2, .32, .4 s …), not 8.3. After a gap the grid restarts at the frame.
            if pts < self._due - 1e-6:
                self.skipped += 1
                return False
            period = 1.0 / self.cfg.max_fps
            self._due = self._due + period if pts < self._due + period else pts + period
        return True

    def _run(self) -> None:
        attempt = 0
        if self.spec.problem:  # found when the arguments were read: it fails alone
            self.error = self.spec.problem
            log.error("%s: %s", self.spec.id, self.error)
            with self._cond:
                self._done = True
            self.wake.set()
            return
        try:
            while not self._stop.is_set():
                try:
                    for frame in self._frames():
                        attempt = 0
                        if self._stop.is_set():
                            break
                        self._put(frame)
                    if self._stop.is_set():  # stopped, not ended: what was not reached is unread, not lost
                        self._count_unread()
                        return
                    self._release()
                    if not self.spec.live:
                        self._count_tail()
                        return
                    if self._finite:  # an HLS playlist with its end (VOD): it ended, as a file does
                        log.info("%s: the stream has a known length and ended: finished", self.spec.id)
                        return
                    log.warning("%s: stream ended; reconnecting", self.spec.id)
                    self._last_failure = "the stream ended"
                except Exception as exc:  # noqa: BLE001 - any decode error ends or retries this source only
                    self._release()
                    if _no_protocol(exc):  # this FFmpeg cannot read the URL's scheme: no reconnect will
                        scheme = self.spec.uri.split(":", 1)[0].lower()
                        self.error = (f"expected FFmpeg to read {scheme}:// URLs, found a build without that "
                                      f"protocol (PyAV {_av_version()}; relay the stream as RTSP or UDP, or build "
                                      "PyAV against an FFmpeg that has it)")
                        log.error("%s: %s", self.spec.id, self.error)
                        return
                    # FFmpeg's errors quote the URL, a camera's password with it: never logged or kept as it is
                    reason = self.spec.scrub(f"{type(exc).__name__}: {exc}")
                    if _timed_out(exc):  # PyAV's timeout interrupts FFmpeg, which calls that an "immediate exit"
                        reason = (f"nothing received within the network timeout (sources.open_timeout_s "
                                  f"{self.cfg.open_timeout_s:g} s to connect, read_timeout_s "
                                  f"{self.cfg.read_timeout_s:g} s between packets)")
                    if not self.spec.live:
                        self.error = reason
                        log.error("%s: cannot read %s: %s", self.spec.id, self.spec.shown, self.error)
                        return
                    log.warning("%s: %s; reconnecting", self.spec.id, reason)
                    self._last_failure = reason
                if self.cfg.max_reconnects and self.reconnects >= self.cfg.max_reconnects:
                    self.error = f"gave up after {self.reconnects} reconnects"
                    log.error("%s: %s", self.spec.id, self.error)
                    return
                delay = min(self.cfg.reconnect_max_s, self.cfg.reconnect_initial_s * 2 ** attempt)
                attempt += 1
                self.reconnects += 1
                self._stop.wait(delay)
        finally:
            with self._cond:
                self._done = True
            self.wake.set()

    def _frames(self) -> Iterator[Frame]:
        if self.spec.kind == "folder":
            yield from self._folder_frames()
        else:
            yield from self._av_frames()

    def _open(self):
        import av

        options, fmt = {}, None
        if self.spec.kind == "rtsp":
            options["rtsp_transport"] = self.cfg.rtsp_transport
            if self.cfg.rtsp_listen:
                options["rtsp_flags"] = "listen"
                options["listen_timeout"] = str(int(self.cfg.open_timeout_s))
        elif self.spec.kind == "webcam":
            fmt = "v4l2"
        elif self.spec.uri.lower().startswith(("udp://", "rtp://")):
            # A datagram not read in time is gone: a larger socket buffer rides out a stall of the decode thread,
            # and an overrun of FFmpeg's receive queue costs the datagrams lost, not the stream (FFmpeg ends the
            # input on one by default). The URL's own ?buffer_size= or ?overrun_nonfatal= win over these.
            options.update({"buffer_size": str(4 << 20), "overrun_nonfatal": "1"})
        # Files need no timeout (a network one read as a file does: sources.live=false); in listen mode the
        # listen_timeout option bounds the wait instead.
        network = self.spec.live or self.spec.kind in ("rtsp", "http", "stream")
        timed = network and not (self.spec.kind == "rtsp" and self.cfg.rtsp_listen)
        timeout = (self.cfg.open_timeout_s, self.cfg.read_timeout_s) if timed else None
        return av.open(self.spec.uri.removeprefix("v4l2:"), format=fmt, options=options, timeout=timeout)

    def _lateness(self, pts: float) -> float:
        """Seconds by which a live packet of stream time ``pts`` (before our offset) arrives after real time.
        The stream clock is anchored on the earliest arrival seen: ``capture ≈ anchor + pts``."""
        now = time.time()
        self._anchor = min(self._anchor, now - pts - self._pts_offset)
        return now - (self._anchor + pts + self._pts_offset)

    def _capture_time(self, pts: float) -> float:
        """Estimated wall time at which the frame of (offset) stream time ``pts`` was captured."""
        if not np.isfinite(self._anchor):
            self._anchor = time.time() - pts
        return self._anchor + pts

    def _av_frames(self) -> Iterator[Frame]:
        """A PyAV session, as small steps: demux → (live) catch up → decode → (recordings) times in order →
        timestamps → resume → pace → keep."""
        container = self._open()
        try:
            stream = self._video_stream(container)
            self._finite = self.spec.kind == "http" and container.duration is not None
            # the frame rate timing frames without a usable timestamp: FFmpeg's guess first (an average over a
            # damaged file's duration can read 2,700 fps; a raw .h264 stream's average is a default 25)
            rate = next((float(r) for r in (stream.guessed_rate, stream.average_rate) if r and 1 <= r <= 300), 25.0)
            start, self._resume_s = self._resume_s, 0.0
            # A new session re-anchors the stream clock: after an outage the wall clock jumped but the
            # (offset) stream time did not, and every frame would look late by the outage's length.
            self._anchor = np.inf
            if start > 0 and stream.time_base:
                container.seek(int(start / stream.time_base), stream=stream)  # the keyframe at or before it
            packets = container.demux(stream)
            if self._real_time:
                packets = self._catch_up(packets, stream)
            decoded = self._decoded(packets)
            if self._real_time:
                decoded = ((f, f.time, damaged) for f, damaged in decoded)
            else:  # a recording: a few frames held back cost nothing (live: they would be lag)
                decoded = self._in_time_order(decoded)
            frames = self._resumed(self._timed(decoded, rate), start)
            if self.cfg.realtime and self.spec.kind == "file":
                frames = self._paced(frames, start)
            t0 = time.perf_counter()
            for av_frame, pts, damaged in frames:
                pts += self._pts_offset
                self._last_pts = pts
                self.decoded += 1
                if not self._keep(self.decoded - 1, pts):
                    t0 = time.perf_counter()
                    continue
                image = self._as_shown(av_frame, stream)
                self.decode_s += time.perf_counter() - t0
                # only a stream that runs in real time has a capture time (a recording is read at our pace)
                capture = self._capture_time(pts) if self._real_time else 0.0
                self.frames_damaged += damaged
                yield Frame(self.spec.id, self.decoded - 1, pts, image, time.time(), capture=capture, damaged=damaged)
                t0 = time.perf_counter()
                if self._stop.is_set():
                    return
        finally:
            container.close()

    def _as_shown(self, av_frame, stream) -> np.ndarray:
        """The frame as a player shows it: BGR, stretched to square pixels (``sources.square_pixels``: a DVR's D1
        704×576 or HDV's 1440×1080 store wider pixels than they are tall) and turned upright (``sources.autorotate``:
        phones store portrait video on its side). Rotation, pixel shape and interlacing are read from the first frame
        kept and logged once."""
        if self.turned is None:
            self._read_display(av_frame, stream)
        image = to_bgr(av_frame)
        if self.sample_aspect != 1.0:
            image = cv2.resize(image, square_size(image.shape[1], image.shape[0], self.sample_aspect),
                               interpolation=cv2.INTER_LINEAR)
        return _turned(image, self.turned)

    def _read_display(self, av_frame, stream) -> None:
        """From the first frame kept: its display rotation, its pixels' shape and whether it is interlaced; each
        said once."""
        self.turned = display_turn(av_frame) if self.cfg.autorotate else 0
        sar = stream.codec_context.sample_aspect_ratio or stream.sample_aspect_ratio
        sar = float(sar) if sar and self.cfg.square_pixels else 1.0
        if not 0.25 <= sar <= 4.0:  # a damaged header, not a shape anyone films in
            log.warning("%s: its header gives pixels %.3g times as wide as tall: ignored, frames kept as stored",
                        self.spec.id, sar)
            sar = 1.0
        self.sample_aspect = sar if abs(sar - 1.0) > 0.01 else 1.0
        if self.sample_aspect != 1.0:
            log.info("%s: its pixels are %.3f times as wide as tall: frames stretched from %dx%d to %dx%d, as a "
                     "player shows them (sources.square_pixels=false keeps them as stored)", self.spec.id,
                     self.sample_aspect, av_frame.width, av_frame.height,
                     *square_size(av_frame.width, av_frame.height, self.sample_aspect))
        if self.turned:
            log.info("%s: its frames carry a display rotation: turned upright by %s, as a player shows them "
                     "(sources.autorotate=false keeps them as stored)", self.spec.id, _TURN_WORDS[self.turned])
        self.interlaced = bool(av_frame.interlaced_frame)
        if self.interlaced:
            # not deinterlaced here (nothing measured says which way helps recognition): said, and in the stats
            log.warning("%s: its frames are interlaced: a moving face shows combing, which lowers its quality "
                        "score and its crop; a progressive stream (the camera's setting) or a deinterlaced copy "
                        "(ffmpeg -vf bwdif) is better", self.spec.id)

    def _count_unread(self) -> None:
        """Stopped before its end: the frames a file or folder still held (a file resumed mid-way: not counted)."""
        if not self.spec.live and not self.spec.start_s:
            self.unread = max(0, self.total_frames - self.decoded - self.frames_lost)  # a folder's broken images: lost

    def _count_unstarted(self) -> None:
        """The run ended before this file's or folder's turn came: what it holds is unread (read from its header)."""
        if self.spec.live or self.spec.problem:
            return
        try:
            if self.spec.kind == "folder":
                self.total_frames = len(self._folder_images())
            else:
                with self._open() as container:
                    self._video_stream(container)
        except Exception as exc:  # noqa: BLE001 - only a count: the file was readable when the run began
            log.warning("%s: not started, and its frames could not be counted (%s)", self.spec.id, exc)
        self._count_unread()

    def _count_tail(self) -> None:
        """At a file's end: the frames its container promised that never came out of the decoder are lost. (Damaged
        timestamps make the timeline's gaps unreliable; the count is not.)"""
        short = self.total_frames - self.decoded
        if self.spec.kind == "file" and not self.spec.start_s and short > 1:  # 1: rounding of duration-based counts
            self.frames_lost = short
        if self.frames_lost:
            log.warning("%s: %d frames could not be decoded (%d undecodable packets)", self.spec.id, self.frames_lost,
                        self.decode_errors)
        if self.frames_damaged:
            log.warning("%s: %d of its %d frames were decoded from damaged stretches (bytes lost or broken since the "
                        "last whole keyframe): their faces are published only for a track with no face from a whole "
                        "frame, then failing the gate \"damaged\"", self.spec.id, self.frames_damaged, self.decoded)

    def _video_stream(self, container):
        """The video stream to read (the largest picture; cover pictures skipped), its decoder threads set and (files)
        its frame count read.

        Raises:
            ValueError: the input has no video stream.
        """
        import av

        # a cover picture or thumbnail stored as a one-frame video stream is no video
        moving = [v for v in container.streams.video if not v.disposition & av.stream.Disposition.attached_pic]
        if not moving:
            found = "only a cover picture" if container.streams.video else "none"
            raise ValueError(f"{self.spec.shown}: expected a video stream, found {found}")
        # the largest picture, as the ffmpeg command line chooses (a one-frame cover track may come first)
        stream = max(moving, key=lambda v: (v.width or 0) * (v.height or 0))
        if len(moving) > 1 and not self._streams_told:
            self._streams_told = True
            log.warning("%s: %d video streams (%s); reading the largest, #%d", self.spec.id, len(moving),
                        ", ".join(f"#{v.index} {v.codec_context.name} {v.width}x{v.height}" for v in moving),
                        stream.index)
        if self.cfg.decode_threads == 1:
            # Beside busy detect/score stages on few cores, or beside many cameras, a decoder's extra threads only
            # compete with them (slice threads cost a camera's 1080p decode 18 % more CPU): decode in this thread.
            stream.thread_type = "NONE"
            stream.codec_context.thread_count = 1
        else:
            if not self.spec.live:
                # files: frame threading speeds a lone decoder up (live streams keep FFmpeg's slice threads: frame
                # threads hold frames back, which is lag)
                stream.thread_type = "AUTO"
            if self.cfg.decode_threads:
                stream.codec_context.thread_count = self.cfg.decode_threads
        if not self.spec.live:
            rate = float(stream.average_rate or 0)
            self.total_frames = stream.frames or int(float(stream.duration * stream.time_base) * rate
                                                     if stream.duration and rate else 0)
        return stream

    def _catch_up(self, packets, stream):
        """Live: bounded lag. Whole GOPs are dropped unseen (no decoding) while far behind real time, and the
        decoder skips non-reference frames while our queue is full."""
        to_keyframe = False
        for packet in packets:
            if packet.pts is not None and packet.time_base is not None:
                late = self._lateness(float(packet.pts * packet.time_base))
                if late > self.cfg.max_lag_s and not packet.is_keyframe:
                    to_keyframe = True
                if to_keyframe and not packet.is_keyframe:
                    self.lag_skipped += 1
                    continue
                to_keyframe = False
                stream.codec_context.skip_frame = "NONREF" if self.depth >= self.cfg.queue_size else "DEFAULT"
            yield packet

    def _decoded(self, packets):
        """``(frame, damaged)`` of the decoded frames; a corrupt packet is skipped (counted) and decoding resumes at the
        next decodable one. Where bytes were lost the decoder conceals the gap with guesses (smeared blocks, a face
        from the frame before), and every frame predicted from a concealed one carries the guesses on: a frame is
        ``damaged`` from a packet that failed or a frame FFmpeg marks corrupt until a keyframe decodes whole (with
        :meth:`_in_time_order`'s frames held before it). What the decoder does not report is not seen: on a talking-head
        clip with 4 runs of 200 bytes zeroed, every visibly damaged frame was marked for two seeds, about half for a
        third; FFmpeg's HEVC decoder reports nothing (README, "Guarantees")."""
        import av

        damaged = False
        for packet in packets:
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as exc:
                self.decode_errors += 1
                damaged = True
                if self.decode_errors <= 3 or self.decode_errors % 100 == 0:
                    log.warning("%s: undecodable packet skipped (%d so far): %s", self.spec.id, self.decode_errors,
                                self.spec.scrub(str(exc)))
                continue
            for av_frame in decoded:
                if av_frame.is_corrupt:
                    damaged = True
                elif av_frame.key_frame:
                    damaged = False
                yield av_frame, damaged

    def _in_time_order(self, frames):
        """``(frame, time, damaged)`` of a recording's ``(frame, damaged)``, in the order decoded, with their own times
        put in order within :data:`REORDER_WINDOW` frames. A healthy file's frames come with their times in order and
        nothing moves. A damaged one's (bytes lost or zeroed, a DVR export cut mid-GOP) still come in the order they are
        shown, but the decoder pairs them with the wrong times after a broken reference, up to 6 frames behind the
        newest (checked against the clean clip's frames: the pictures in order, their times shuffled). Taken as they
        came, each frame behind the last was timed a frame after it (:meth:`_timed`) and the timeline stretched: a 25-s
        talking-head clip with 40 zeroed spots read as 44 s (141 of its 730 frames moved on), and its real-time factor,
        track ages and re-ID windows with it. Each frame now takes the earliest time held, as its place in the order
        says: it reads 25.1 s (4 frames still moved on). A time more than :data:`REORDER_REACH_S` behind the newest is a
        clock that started again (recordings joined end to end): what is held goes first, and :meth:`_timed` times it on
        from there. Frames whose own time came behind the newest are counted (``timestamps_reordered``). When a damaged
        stretch begins, the frames held are marked damaged too: a frame shown before a broken one may be predicted from
        it, and comes out of the decoder first (seen: 4 such frames before a broken one; a live source, held nowhere,
        marks from the broken one on)."""
        held: collections.deque = collections.deque()  # [frame, damaged], in the order decoded
        times: list = []  # their times, a heap
        newest, was_damaged = -np.inf, False
        for av_frame, damaged in frames:
            if damaged and not was_damaged:
                for item in held:
                    item[1] = True
            was_damaged = damaged
            t = av_frame.time
            if t is None or t < newest - REORDER_REACH_S:
                while held:
                    av_frame_held, damaged_held = held.popleft()
                    yield av_frame_held, heapq.heappop(times), damaged_held
                newest = -np.inf
                if t is None:
                    yield av_frame, None, damaged
                    continue
            if t < newest:
                self.timestamps_reordered += 1
            newest = max(newest, t)
            held.append([av_frame, damaged])
            heapq.heappush(times, t)
            if len(held) > REORDER_WINDOW:
                av_frame, damaged = held.popleft()
                yield av_frame, heapq.heappop(times), damaged
        while held:
            av_frame, damaged = held.popleft()
            yield av_frame, heapq.heappop(times), damaged

    def _timed(self, frames, rate: float):
        """``(frame, pts, damaged)`` of ``(frame, its own time or None, damaged)``: that time (else the frame's index at
        ``rate``), before the session offset. A reconnect that restarts the stream clock moves the offset so our
        timestamps stay monotonic; so does a frame of one session whose time does not come after the last one's (a
        damaged or concatenated file: every frame at 0, a clock reset mid-file), which is then timed one frame period
        after it, counted in ``timestamps_repaired`` and said once. Left as they were, equal times stop rate limits,
        track ages and speeds from meaning anything. A live frame less than a frame period behind the last (a camera's
        clock wavering by milliseconds as an RTSP session starts) is timed just after it, uncounted."""
        for n, (av_frame, own, damaged) in enumerate(frames):
            pts = own if own is not None else n / rate
            if n and self.spec.live and self._last_pts - 1.0 / rate < pts + self._pts_offset <= self._last_pts:
                # a camera's clock wavers by a few milliseconds as an RTSP session starts (RTCP): just after the last
                yield av_frame, self._last_pts + 1e-3 - self._pts_offset, damaged
                continue
            if pts + self._pts_offset <= self._last_pts:
                if n:  # not a new session's first frame: the stream's own clock went back or stood still
                    self.timestamps_repaired += 1
                    if self.timestamps_repaired == 1:
                        log.warning("%s: frame timestamps go back or repeat (a frame at %.3f s follows one at "
                                    "%.3f s): such frames are timed one frame (1/%.3g s) after the last; counted in "
                                    "the stats as timestamps_repaired", self.spec.id, pts + self._pts_offset,
                                    self._last_pts, rate)
                self._pts_offset = self._last_pts + 1.0 / rate - pts
            yield av_frame, pts, damaged

    @staticmethod
    def _resumed(frames, start: float):
        """Frames from ``start`` on (a seek lands on the keyframe before it)."""
        for item in frames:
            if item[1] >= start - 1e-6:
                yield item

    def _paced(self, frames, start: float):
        """A recording standing in for a camera: frames arrive at the clip's own rate."""
        clock0 = None
        for item in frames:
            pts = item[1]
            if clock0 is None:
                clock0 = time.monotonic() - (pts - start)
            wait = clock0 + (pts - start) - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            yield item

    def _folder_images(self) -> list[Path]:
        """The folder source's images, in the order they are read."""
        return sorted(p for p in Path(self.spec.uri).iterdir() if is_image(p))

    def _folder_frames(self) -> Iterator[Frame]:
        files = self._folder_images()
        if not files:
            raise FileNotFoundError(f"{self.spec.uri}: expected images ({', '.join(IMAGE_EXTENSIONS)}), found none")
        inner = sorted(p.name for p in Path(self.spec.uri).iterdir() if p.is_dir())
        if inner:  # one folder is one sequence of photos: what is inside its sub-folders is not read
            log.warning("%s: %d sub-folder(s) not read (%s%s): a folder source reads the images directly inside it; "
                        "give a sub-folder as a source of its own to read it", self.spec.id, len(inner),
                        ", ".join(inner[:3]), ", …" if len(inner) > 3 else "")
        self.total_frames = len(files)
        for i, path in enumerate(files):
            pts = i / max(self.cfg.folder_fps, 1e-6)
            if not self._keep(i, pts):
                self.decoded += 1  # a skipped image counts as gone through, as a skipped video frame does
                continue
            t0 = time.perf_counter()
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            self.decode_s += time.perf_counter() - t0
            if image is None:  # a frame that could not be decoded, not one waiting unprocessed when the run ended
                self.frames_lost += 1
                log.warning("%s: skipping %s: not a readable image", self.spec.id, path.name)
                continue
            self.decoded += 1
            # unrelated photos: each is a shot of its own (faces are tracked across them only when asked)
            yield Frame(self.spec.id, i, pts, image, time.time(), cut=i > 0 and not self.cfg.folder_tracking,
                        name=path.name)
