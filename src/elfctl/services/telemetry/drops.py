"""Spans the exporter dropped (collector down, hung, or the queue full), written to the actions trail
so `elfctl health` in another process sees them: one row per report while spans are being dropped,
`result` "dropped N spans" (N since the previous row), never on the call path (a daemon thread)."""

from __future__ import annotations

import re
import threading

from elfctl.redact import redact_url
from elfctl.services.actions import trail

RESOURCE = "telemetry"
_RESULT = re.compile(r"^dropped (\d+) spans?$")


class DropReporter:
    def __init__(self, pipeline, actor: str, every_s: float = 5.0):
        self.pipeline, self.actor, self.every_s = pipeline, actor, every_s
        self.store = None
        self.reported = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, store) -> None:
        """Report into `store` (the newest one handed in: elfctl.llm.reset opens another)."""
        self.store = store
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="elfctl-otel-drops", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        stop = threading.Event()
        while not stop.wait(self.every_s):
            self.report()

    def report(self) -> int:
        """Write what was dropped since the last row; returns that number (0: nothing written)."""
        with self._lock:
            new = self.pipeline.dropped - self.reported
            if new <= 0 or self.store is None:
                return 0
            try:
                where = redact_url(self.pipeline.endpoint)
                trail.record(self.store, trail.Action(
                    RESOURCE, f"collector {where}: {self.pipeline.last_error or 'export failed'}",
                    "drop_spans", f"dropped {new} spans", self.actor, target=where))
            except Exception:  # noqa: BLE001 - the store down too: the count waits for the next round
                return 0
            self.reported += new
            return new


def dropped_since(store, since) -> tuple[int, str]:
    """(spans dropped, the newest trigger) in the trail since `since`, by every process."""
    total, why = 0, ""
    for action in trail.recent(store, since=since, limit=100000, resource=RESOURCE):
        m = _RESULT.match(action.result)
        if m:
            total += int(m.group(1))
            why = why or action.trigger
    return total, why
