"""What to open: source arguments (``URI`` or ``ID=URI``) → specs with a kind, a unique id and liveness.

A folder of videos is one source per video; a folder of images is one source of photos (each photo its own shot); a
file is probed, and one with no video stream in it (an audio file, a text file FFmpeg would render as ANSI art) is
refused with the reason. A source that cannot be read fails alone; when none can, the run is refused.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

KINDS = ("file", "rtsp", "http", "stream", "webcam", "folder")

#: Other network streams FFmpeg reads (kind ``stream``): MPEG-TS over UDP (unicast or multicast), RTP or TCP, as
#: encoders and video management systems send it; RTMP; SRT and RIST where FFmpeg was built with them (PyAV's
#: wheels are not: such a source fails alone, saying so); MMS.
STREAM_SCHEMES = ("udp", "rtp", "srtp", "tcp", "tls", "rtmp", "rtmps", "rtmpt", "rtmpts", "srt", "rist", "mmsh",
                  "mmst")
_WHAT = ("a video file, an image folder, a stream URL (rtsp://, http(s)://, udp://, rtp://, tcp://, rtmp(s)://, "
         "srt://, rist://, mmsh://) or /dev/videoN")


@dataclass(frozen=True)
class SourceSpec:
    """What to open.

    Attributes:
        uri: path, URL or device.
        id: short id used in topics and file names (letters, digits, ``_``, ``-``).
        kind: one of :data:`KINDS`.
        live: live sources drop frames under load and reconnect; others do neither.
        start_s: files: start at this stream time (a source resumed elsewhere after a failure).
        problem: why it cannot be read (then it fails on its own), or empty.
    """

    uri: str
    id: str
    kind: str
    live: bool
    start_s: float = 0.0
    problem: str = ""

    @property
    def shown(self) -> str:
        """The URI as logs, errors and the stats may show it: a camera's password and secret-looking query values
        replaced by ``***`` (:func:`redact`)."""
        return redact(self.uri)

    def scrub(self, text: str) -> str:
        """``text`` (an FFmpeg error quoting the URI, say) with the URI replaced by :attr:`shown`."""
        return text.replace(self.uri, self.shown)


#: Query keys whose values are credentials (a camera's ``password=``, a signed stream's ``token=``).
_SECRET_QUERY = re.compile(r"(?i)(^|[&;])((?:pass(?:word|phrase)?|pwd|passwd|token|access_token|secret|key"
                           r"|api_?key|auth|sig(?:nature)?)=)[^&;#]*")


def redact(uri: str) -> str:
    """``uri`` with the password of its user info and the values of credential query keys as ``***``.

    ``rtsp://admin:s3cret@10.0.0.5/stream1`` → ``rtsp://admin:***@10.0.0.5/stream1``; paths and devices are returned
    unchanged. A camera URL is a credential: it must not reach logs, ``manifest.json`` or a metrics scraper.
    """
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/?#]*)(.*)$", uri)
    if not m:
        return uri
    scheme, netloc, rest = m.groups()
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    if "?" in rest:
        path, _, query = rest.partition("?")
        query, hash_, frag = query.partition("#")
        rest = f"{path}?{_SECRET_QUERY.sub(lambda q: q.group(1) + q.group(2) + '***', query)}{hash_}{frag}"
    return scheme + netloc + rest


def _kind(uri: str) -> str:
    low = uri.lower()
    if low.startswith(("rtsp://", "rtsps://")):
        return "rtsp"
    if low.startswith(("http://", "https://")):
        return "http"
    scheme = re.match(r"^([a-z][a-z0-9+.-]*)://", low)
    if scheme and scheme.group(1) in STREAM_SCHEMES:
        return "stream"
    if low.startswith("/dev/video") or re.fullmatch(r"v4l2:.*", low):
        return "webcam"
    path = Path(uri)
    if path.is_dir():
        return "folder"
    if path.is_file():
        return "file"
    if scheme:
        raise FileNotFoundError(f"source {redact(uri)!r}: expected {_WHAT}, found the scheme "
                                f"{scheme.group(1)}://, which is none of them")
    raise FileNotFoundError(f"source {uri!r}: expected {_WHAT}, found nothing at that path")


def _local_path(uri: str) -> str:
    """A ``file://`` URL (a file manager's or a browser's copy of a path) as the path it names; others unchanged.

    Raises:
        FileNotFoundError: a ``file://`` URL of another host.
    """
    if not uri.lower().startswith("file://"):
        return uri
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise FileNotFoundError(f"source {uri!r}: expected a file:// URL of this machine, found one of host "
                                f"{parts.netloc!r} (mount it and give its path)")
    return unquote(parts.path)


#: Codecs FFmpeg gives text files (its tty demuxer renders them): never a camera's picture.
TEXT_CODECS = ("ansi", "bintext", "xbin", "idf")


def media_problem(path: str | Path) -> str:
    """Why the file at ``path`` is no video (empty when it is one FFmpeg can read)."""
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return f"expected a video stream in {path}, found none (streams: {', '.join(s.type for s in c.streams)})"
            codec = c.streams.video[0].codec_context.name
            if codec in TEXT_CODECS:
                return f"expected a video in {path}, found text (FFmpeg's {c.format.name} demuxer reads it as {codec})"
    except av.error.FFmpegError as exc:
        return f"expected a video or image file FFmpeg can read at {path}, found one it cannot ({exc})"
    return ""


def _entries(uri: str, sid: str | None, i: int) -> list[tuple[str, str | None, str, str]]:
    """``(uri, id, kind, problem)`` of one argument; a folder of videos becomes one entry per video."""
    from streamfiqa.io.media import VIDEO_EXTENSIONS, is_image

    try:
        uri = _local_path(uri)
        kind = _kind(uri)
    except FileNotFoundError as exc:
        return [(uri, sid, "missing", str(exc))]
    if kind == "file":
        return [(uri, sid, kind, media_problem(uri))]
    if kind != "folder":
        return [(uri, sid, kind, "")]
    files = sorted(p for p in Path(uri).iterdir() if p.is_file())
    videos = [p for p in files if p.suffix.lower() in VIDEO_EXTENSIONS]
    out = [(uri, sid, "folder", "")] if any(is_image(p) for p in files) else []
    out += [(str(v), f"{sid}-{v.stem}" if sid else None, "file", media_problem(v)) for v in videos]
    if out:
        return out
    subs = sorted(p.name for p in Path(uri).iterdir() if p.is_dir())
    inside = (f" (its {len(subs)} subfolder(s), {', '.join(subs[:3])}{', …' if len(subs) > 3 else ''}, are not "
              "looked into: name them as sources)") if subs else ""
    return [(uri, sid, "folder", f"expected images or videos in the folder {uri}, found none{inside}")]


def parse_sources(args: list[str], live: str = "auto", strict: bool = True) -> list[SourceSpec]:
    """Turn CLI arguments (``URI`` or ``ID=URI``) into specs with unique ids (see the module docstring).

    Args:
        args: the source arguments.
        live: ``auto`` (network and webcams are live), ``true`` or ``false``.
        strict: raise on a source that cannot be read; else keep it with its ``problem`` so that it fails on its own
            (one bad source never stops the others).

    Raises:
        FileNotFoundError, ValueError: (strict) a path that does not exist, or a file that is no video.
        ValueError: the same ``ID`` given to two sources (whatever ``strict``: topics and files would mix them).
    """
    specs, seen, named = [], set(), {}
    for i, arg in enumerate(args):
        m = re.match(r"^([A-Za-z0-9_.-]+)=(.+)$", arg)
        given, uri0 = (m.group(1), m.group(2)) if m and not Path(arg).exists() else (None, arg)
        if given is not None:
            if given in named:
                raise ValueError(f"source id {given!r}: expected each ID=URI to give a different id, found it given "
                                 f"to {redact(named[given])} and to {redact(uri0)}")
            named[given] = uri0
        for uri, sid, kind, problem in _entries(uri0, given, i):
            if problem and strict:
                raise (FileNotFoundError if kind == "missing" else ValueError)(problem)
            if sid is None:
                if kind in ("file", "folder", "webcam", "missing"):
                    sid = Path(uri.rstrip("/")).stem
                else:  # rtsp0, http1, and a stream by its scheme: udp2
                    sid = f"{uri.split(':', 1)[0].lower() if kind == 'stream' else kind}{i}"
            sid = re.sub(r"[^A-Za-z0-9_-]", "_", sid) or f"src{i}"
            base, n = sid, 2
            while sid in seen:
                sid, n = f"{base}-{n}", n + 1
            seen.add(sid)
            is_live = kind in ("rtsp", "http", "stream", "webcam") if live == "auto" else live == "true" and not problem
            specs.append(SourceSpec(uri, sid, kind, is_live and not problem, problem=problem))
    return specs


def readable(specs: list[SourceSpec]) -> list[SourceSpec]:
    """``specs`` when at least one can be read.

    Raises:
        ValueError: none can (the first one's reason).
    """
    if specs and all(s.problem for s in specs):
        raise ValueError(specs[0].problem)
    return specs
