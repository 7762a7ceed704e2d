"""Detection in a thread of its own (``detector.thread``), pipelined with the runner's scoring and selection."""
from __future__ import annotations

import logging
import queue
import threading

log = logging.getLogger(__name__)


class DetectStage:
    """Detection, alignment and tier-0 of the next frames in a thread of their own, while the runner's thread
    scores, tracks and selects the previous ones: on a 2-core machine each stage keeps one core busy. A queue of two
    rounds between them bounds memory and latency; when it is full this thread waits, so the sources' own queues
    (and their drop policy) take the pressure.

    Args:
        runner: the :class:`~streamfiqa.pipeline.runner.Runner` whose ``ready`` and ``prepare`` this thread calls.
        stop: set to stop.
    """

    def __init__(self, runner, stop: threading.Event) -> None:
        self.runner, self.stop = runner, stop
        self.out: queue.Queue = queue.Queue(maxsize=2)
        self._ended: set = set()
        self._halt = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="detect", daemon=True)
        self.thread.start()

    def get(self, timeout: float = 0.05):
        """The next ``("frames", prepared)`` or ``("end", source state)`` item, or None."""
        try:
            return self.out.get(timeout=timeout)
        except queue.Empty:
            return None

    def _put(self, item) -> bool:
        while not (self._halt.is_set() or self.stop.is_set()):
            try:
                self.out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _loop(self) -> None:
        r = self.runner
        try:
            while not (self._halt.is_set() or self.stop.is_set()):
                r.wake.clear()
                ready = r.ready(self._end, self._ended)
                if ready:
                    self._put(("frames", r.prepare(ready)))
                else:
                    r.wake.wait(0.05)
        except Exception:  # noqa: BLE001 - surface in the log; the main loop ends the sources
            log.exception("detection stage failed")
            for st in r.states:
                if st.index not in self._ended:
                    st.source.error = st.source.error or "detection stage failed"
                    self._end(st)

    def _end(self, st) -> None:
        """A source ended: the runner's thread finishes it, after the frames already handed over."""
        self._ended.add(st.index)
        self._put(("end", st))

    def close(self) -> None:
        self._halt.set()
        self.thread.join(timeout=5)
