"""Push a video file to an RTSP URL in real time with PyAV (test helper; ffmpeg -re -c copy -f rtsp)."""
import sys
import time

import av


def push(src: str, url: str, transport: str = "tcp", loops: int = 1) -> None:
    for _ in range(loops):
        with av.open(src) as inp, av.open(url, "w", format="rtsp", options={"rtsp_transport": transport}) as out:
            istream = inp.streams.video[0]
            ostream = out.add_stream_from_template(istream)
            t0 = time.monotonic()
            for packet in inp.demux(istream):
                if packet.dts is None:
                    continue
                due = float(packet.dts * istream.time_base)
                delay = due - (time.monotonic() - t0)
                if delay > 0:
                    time.sleep(delay)
                packet.stream = ostream
                out.mux(packet)


if __name__ == "__main__":
    push(sys.argv[1], sys.argv[2], *(sys.argv[3:4] or ["tcp"]), loops=int(sys.argv[4]) if len(sys.argv) > 4 else 1)
