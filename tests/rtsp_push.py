"""Push a video file to an RTSP URL in real time with PyAV (test helper; like ffmpeg -re -c copy -f rtsp), or as
MPEG-TS to a udp:// one (an encoder's or a video management system's stream).

Usage: python tests/rtsp_push.py CLIP URL [tcp|udp]. Retries the connection for up to 20 s, so the
listening side may still be starting.
"""
import sys
import time

import av


def _connect(url: str, transport: str, deadline_s: float = 20.0):
    t0 = time.monotonic()
    while True:
        try:
            if url.startswith("udp://"):  # 1316 bytes: 7 MPEG-TS packets a datagram, as encoders send
                return av.open(url + "?pkt_size=1316", "w", format="mpegts")
            return av.open(url, "w", format="rtsp", options={"rtsp_transport": transport})
        except OSError:
            if time.monotonic() - t0 > deadline_s:
                raise
            time.sleep(0.2)


def push(src: str, url: str, transport: str = "tcp") -> None:
    with av.open(src) as inp, _connect(url, transport) as out:
        istream = inp.streams.video[0]
        ostream = out.add_stream_from_template(istream)
        t0 = time.monotonic()
        for packet in inp.demux(istream):
            if packet.dts is None:
                continue
            delay = float(packet.dts * istream.time_base) - (time.monotonic() - t0)
            if delay > 0:
                time.sleep(delay)
            packet.stream = ostream
            out.mux(packet)


if __name__ == "__main__":
    push(sys.argv[1], sys.argv[2], *(sys.argv[3:4] or ["tcp"]))
