"""Prometheus metrics of a run (``metrics.port``; off by default, bound to 127.0.0.1).

The counters and gauges are read from :meth:`Runner.stats` at scrape time (one source of truth, nothing
counted twice); stage latencies are histograms observed as frames are processed.

=========================================  =========  ===================================================
metric                                     type       labels
=========================================  =========  ===================================================
streamfiqa_frames_processed_total          counter    source
streamfiqa_frames_decoded_total            counter    source
streamfiqa_frames_dropped_total            counter    source, reason (queue, lag)
streamfiqa_faces_total                     counter    source
streamfiqa_events_total                    counter    source, kind (best, update, enrolled, …)
streamfiqa_reconnects_total                counter    source
streamfiqa_decode_errors_total             counter    source
streamfiqa_shot_cuts_total                 counter    source
streamfiqa_queue_depth                     gauge      source
streamfiqa_lag_seconds                     gauge      source (live sources)
streamfiqa_publish_dropped_total           counter
streamfiqa_heavy_total                     counter    outcome (submitted, skipped, done, failed)
streamfiqa_heavy_queue_depth               gauge
streamfiqa_detector_frames_total           counter    mode (full, windowed) (``detector.full_every`` > 1)
streamfiqa_detector_windows_total          counter    (windows run around known faces)
streamfiqa_stage_seconds                   histogram  stage (detect, align, quality, score, track, select)
streamfiqa_fleet_restarts_total            counter    (fleet mode, served by the fan-in)
streamfiqa_fleet_worker_lost_tracks_total  counter
streamfiqa_fleet_gap_frames_total          counter
streamfiqa_fleet_workers                   gauge
=========================================  =========  ===================================================
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Serves a runner's metrics over HTTP.

    Args:
        stats: a callable returning :meth:`Runner.stats`-shaped dicts.
        port: TCP port (0 = an ephemeral one; see :attr:`port`).
        address: bind address (127.0.0.1 unless you mean to expose it).
    """

    def __init__(self, stats, port: int = 0, address: str = "127.0.0.1") -> None:
        try:
            from prometheus_client import CollectorRegistry, Histogram, start_http_server
        except ImportError as exc:
            raise ValueError("metrics: expected the prometheus-client package (pip install 'streamfiqa[metrics]'), "
                             "found none") from exc
        self.registry = CollectorRegistry()
        self._stats = stats
        self.registry.register(self)
        self.stage = Histogram("streamfiqa_stage_seconds", "Per-frame time of each pipeline stage", ["stage"],
                               registry=self.registry, buckets=BUCKETS)
        try:
            self.server, self.thread = start_http_server(port, addr=address, registry=self.registry)
        except OSError as exc:
            raise ValueError(f"metrics: cannot serve on {address}:{port}: {exc.strerror or exc}") from None
        self.port = self.server.server_address[1]
        log.info("metrics on http://%s:%d/metrics", address, self.port)

    def observe(self, stage: str, seconds: float) -> None:
        self.stage.labels(stage).observe(seconds)

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self._stats()
        fam = {
            "processed": CounterMetricFamily("streamfiqa_frames_processed", "Frames processed", labels=["source"]),
            "decoded": CounterMetricFamily("streamfiqa_frames_decoded", "Frames decoded", labels=["source"]),
            "dropped": CounterMetricFamily("streamfiqa_frames_dropped", "Frames dropped (queue full or to catch "
                                           "up with a live source)", labels=["source", "reason"]),
            "faces": CounterMetricFamily("streamfiqa_faces", "Faces detected", labels=["source"]),
            "events": CounterMetricFamily("streamfiqa_events", "Events emitted", labels=["source", "kind"]),
            "reconnects": CounterMetricFamily("streamfiqa_reconnects", "Source reconnects", labels=["source"]),
            "decode_errors": CounterMetricFamily("streamfiqa_decode_errors", "Undecodable packets skipped",
                                                 labels=["source"]),
            "cuts": CounterMetricFamily("streamfiqa_shot_cuts", "Shot cuts detected", labels=["source"]),
            "queue": GaugeMetricFamily("streamfiqa_queue_depth", "Decoded frames waiting", labels=["source"]),
            "lag": GaugeMetricFamily("streamfiqa_lag_seconds", "Live lag of the newest processed frame",
                                     labels=["source"]),
        }
        for sid, src in s.get("sources", {}).items():
            for key in ("processed", "decoded", "faces", "reconnects", "decode_errors", "cuts"):
                fam[key].add_metric([sid], src.get(key, 0))
            fam["dropped"].add_metric([sid, "queue"], src.get("dropped", 0))
            fam["dropped"].add_metric([sid, "lag"], src.get("lag_skipped", 0))
            for kind, n in src.get("events_by_kind", {}).items():
                fam["events"].add_metric([sid, kind], n)
            fam["queue"].add_metric([sid], src.get("queue", 0))
            fam["lag"].add_metric([sid], src.get("lag_s", 0.0))
        yield from fam.values()
        yield _family(CounterMetricFamily, "streamfiqa_publish_dropped", "Events not delivered (queue full or a "
                      "subscriber/peer not keeping up)", s.get("publish_dropped", 0))
        heavy = s.get("heavy")
        if heavy:
            yield _family(CounterMetricFamily, "streamfiqa_heavy", "Heavy-tier keyframes", heavy, "outcome",
                          ("submitted", "skipped", "done", "failed"))
            yield _family(GaugeMetricFamily, "streamfiqa_heavy_queue_depth", "Keyframes waiting for the heavy tier",
                          heavy.get("queue", 0))
        det = s.get("detector")
        if det:
            yield _family(CounterMetricFamily, "streamfiqa_detector_frames", "Frames detected in full or through "
                          "windows", det, "mode", ("full", "windowed"))
            yield _family(CounterMetricFamily, "streamfiqa_detector_windows", "Windows run around known faces",
                          det.get("windows", 0))
        fleet = s.get("fleet")
        if fleet:
            for key, doc in (("restarts", "Fleet workers replaced after a failure"),
                             ("worker_lost_tracks", "Tracks ended from a dead worker's checkpoint"),
                             ("gap_frames", "Live frames lost while a source moved to another worker")):
                yield _family(CounterMetricFamily, f"streamfiqa_fleet_{key}", doc, fleet.get(key, 0))
            yield _family(GaugeMetricFamily, "streamfiqa_fleet_workers", "Fleet workers", fleet.get("workers", 0))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _family(cls, name: str, doc: str, values, label: str | None = None, keys: tuple = ()):
    """A metric family of ``cls`` (counter or gauge): one unlabelled value, or ``values[key]`` for each of ``keys``
    under ``label`` (0 where a key is missing)."""
    if label is None:
        fam = cls(name, doc)
        fam.add_metric([], values)
        return fam
    fam = cls(name, doc, labels=[label])
    for key in keys:
        fam.add_metric([key], values.get(key, 0))
    return fam
