import io
import json
import threading
import time

import zmq

from conftest import free_port, make_event
from streamfiqa.config import PublishConfig
from streamfiqa.io.listen import listen
from streamfiqa.io.sinks import ZmqPublisher


def test_zmq_round_trip_on_loopback(tmp_path):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub = ZmqPublisher(PublishConfig(endpoint=endpoint))
    got, out = [], io.StringIO()
    t = threading.Thread(target=lambda: got.append(listen(endpoint, str(tmp_path), count=3, timeout_s=10, out=out)))
    t.start()
    time.sleep(0.5)  # PUB/SUB: let the subscription arrive first
    for i in range(3):
        pub.emit(make_event(i))
    t.join(15)
    pub.close()
    assert got == [3]
    metas = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [m["topic"] for m in metas] == ["face.best.cam1"] * 3
    assert [m["track_id"] for m in metas] == [0, 1, 2] and all(m["schema"] == 1 for m in metas)
    saved = sorted((tmp_path / "crops").glob("*.jpg"))
    assert len(saved) == 3 and saved[0].read_bytes()[:2] == b"\xff\xd8"


def test_publisher_never_blocks_and_counts_drops():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pub = ZmqPublisher(PublishConfig(endpoint=endpoint, socket="push", hwm=1, queue_size=2, send_timeout_ms=50))
    t0 = time.monotonic()
    for i in range(50):  # no PULL peer at all: everything beyond the buffers is dropped
        pub.emit(make_event(i))
    assert time.monotonic() - t0 < 0.5
    pub.close()
    assert pub.dropped > 0 and pub.sent + pub.dropped == 50


def test_bound_to_loopback_by_default():
    from streamfiqa.config import load_config
    from pipelines import cctv

    cfg = load_config(base=cctv.DEFAULTS)
    assert cfg.publish.endpoint == "tcp://127.0.0.1:5556"
    assert zmq.zmq_version_info() >= (4, 0)


def test_a_listener_that_hears_nothing_says_so(caplog):
    """ZeroMQ connects in the background and never says an endpoint is wrong: a listener that timed out without a
    single event warns (it was silent, exit 0)."""
    import logging

    endpoint = f"tcp://127.0.0.1:{free_port()}"  # nobody publishes there
    with caplog.at_level(logging.WARNING, logger="streamfiqa.io.listen"):
        assert listen(endpoint, timeout_s=0.3, out=io.StringIO()) == 0
    assert f"nothing received from {endpoint}" in caplog.text


def test_contact_sheet_labels_stay_in_their_tile_and_its_page_escapes_what_it_shows(tmp_path):
    """A clip's long name was drawn across its neighbours' tiles; it now ends where its tile ends (its end kept, which
    tells clips apart). A source id reaches the HTML page only escaped (a file may be named with markup)."""
    import dataclasses

    import cv2

    from streamfiqa.io.sinks import _FONT, _SCALE, ContactSheet, _fit

    sheet = ContactSheet(tmp_path / "sheet.png", tile=160, columns=2)
    names = ["FuxiVirtualHuman__styletalk__andrew_clip_1", "<img src=x onerror=alert(1)>"]
    for i, name in enumerate(names):
        sheet.emit(dataclasses.replace(make_event(i + 1), source_id=name))
    sheet.close()
    assert cv2.imread(str(tmp_path / "sheet.png")).shape == (160 + 36, 320, 3)
    label = _fit(names[0], 154)
    assert label.startswith("...") and label.endswith("andrew_clip_1")
    assert cv2.getTextSize(label, _FONT, _SCALE, 1)[0][0] <= 154 and _fit("cam1", 154) == "cam1"
    page = (tmp_path / "sheet.html").read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_an_endpoint_whose_port_is_no_port_is_refused_not_wrapped(tmp_path):
    """libzmq binds tcp://127.0.0.1:99999 as port 34463 and says nothing; the publisher and the listener refuse it."""
    import pytest

    with pytest.raises(ValueError, match="expected a TCP port from 1 to 65535.*found 99999"):
        ZmqPublisher(PublishConfig(endpoint="tcp://127.0.0.1:99999"))
    with pytest.raises(ValueError, match="listen tcp://127.0.0.1:70000: expected a TCP port"):
        listen("tcp://127.0.0.1:70000", None, timeout_s=0.1)


def test_a_full_disk_costs_the_file_sink_its_events_counted_not_the_run(tmp_path, caplog):
    """A full disk (/dev/full: every write fails with ENOSPC) raised out of the sink and took the run down with a
    traceback, the publisher and the other sources with it. The sink now counts what it could not write and says so
    once; a run that lost events exits 1 (tests/pipeline)."""
    from streamfiqa.config import OutputConfig
    from streamfiqa.io.sinks import FileSink

    sink = FileSink(OutputConfig(dir=str(tmp_path / "out")))
    sink.emit(make_event(1))
    sink._log.close()
    sink._log = open("/dev/full", "w", encoding="utf-8")  # the disk fills up
    with caplog.at_level("ERROR", logger="streamfiqa.io.sinks"):
        sink.emit(make_event(2))
        sink.emit(make_event(3))
    assert sink.lines == 1 and sink.unwritten == 2
    assert caplog.text.count("cannot write") == 1 and "No space left on device" in caplog.text
    sink._log = open(tmp_path / "out" / "events.jsonl", "a", encoding="utf-8")  # (its own handle back, for close)
    sink.close()
