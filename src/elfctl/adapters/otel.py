"""OpenTelemetry: the only module importing it. A tracer and a meter exporting over OTLP/HTTP behind a
bounded queue that never blocks the caller, and the count of spans dropped.

The SDK's own path costs about 0.1 ms per span and per measurement on the calling thread (attribute
checks, ids, view matching), and its BatchSpanProcessor drops silently (a log line) when full and
forgets a batch whose export failed. So callers note plain records (times, attribute dicts) and append
them to a deque with a cap; one daemon thread turns them into SDK spans with their recorded times,
records the measurements, exports, and counts what it could not deliver. A collector that is down or
hangs costs the calling thread one append; its spans are dropped and counted instead.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

EXPORT_TIMEOUT_S = 3.0  # one export request, retries included (the SDK's default is 10 s)
SHUTDOWN_S = 2.0  # at exit: what is queued gets this long, then is dropped (a hung collector never holds exit)

_KIND = {"client": SpanKind.CLIENT, "internal": SpanKind.INTERNAL, "server": SpanKind.SERVER}


class Record:
    """A span to be: name, times, attributes, events and children, noted on the caller's thread without
    the SDK (a dict update, a clock read). The export thread turns a finished tree into SDK spans."""

    __slots__ = ("name", "kind", "start", "end_ns", "attrs", "events", "error", "children", "measures", "_pipeline")

    def __init__(self, pipeline, name: str, attrs: dict, kind: str):
        self.name, self.kind, self.attrs, self._pipeline = name, kind, attrs, pipeline
        self.start, self.end_ns = time.time_ns(), 0
        self.events: list = []
        self.error: str | None = None
        self.children: list[Record] = []
        self.measures: list = []  # (instrument method, value, attributes), recorded with the tree

    def set(self, attrs: dict[str, Any]) -> None:
        self.attrs.update(attrs)

    def event(self, name: str, attrs: dict[str, Any] | None = None) -> None:
        self.events.append((name, time.time_ns(), attrs))

    def fail(self, error_type: str, description: str = "") -> None:
        self.attrs["error.type"] = error_type
        self.error = description

    def end(self) -> None:
        """Ends the span; a root's end hands its whole tree to the export queue."""
        self.end_ns = time.time_ns()
        if self._pipeline is not None:
            self._pipeline._submit(self)

    def count(self) -> int:
        return 1 + sum(c.count() for c in self.children)


class _Collect(SpanProcessor):
    """The export thread's own: spans it just made, ended, waiting to be exported as one batch."""

    def __init__(self):
        self.batch: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.batch.append(span)


class _Instrument:
    """A histogram or counter whose measurements are recorded by the export thread."""

    __slots__ = ("_pipeline", "_inner")

    def __init__(self, pipeline, inner):
        self._pipeline, self._inner = pipeline, inner

    def record(self, value: float, attrs: dict, on: Record | None = None) -> None:
        """`on`: a root span not ended yet; the measurement goes to the queue with it (no lock here)."""
        if on is not None:
            on.measures.append((self._inner.record, value, attrs))
        else:
            self._pipeline._measure(self._inner.record, value, attrs)

    def add(self, value: float, attrs: dict, on: Record | None = None) -> None:
        if on is not None:
            on.measures.append((self._inner.add, value, attrs))
        else:
            self._pipeline._measure(self._inner.add, value, attrs)


def _clean(attrs: dict | None) -> dict:
    return {k: v for k, v in (attrs or {}).items() if v is not None}


class Pipeline:
    """A tracer and a meter exporting over OTLP/HTTP (`span_exporter`/`metric_reader` replace them in
    tests), behind a bounded queue: callers only append finished span trees and measurements; one daemon
    thread makes the SDK spans, records the measurements and exports. When the queue is full, or an
    export fails, or spans are still queued at close, they are dropped and counted (`dropped`)."""

    def __init__(self, service_name: str, endpoint: str = "", resource: dict[str, str] | None = None,
                 span_exporter: SpanExporter | None = None, metric_reader: MetricReader | None = None,
                 max_queue: int = 2048, batch: int = 512, delay_s: float = 1.0, export_interval_s: float = 10.0):
        res = Resource.create({"service.name": service_name, **(resource or {})})
        self.endpoint, self.max_queue, self.batch, self.delay_s = endpoint, max_queue, batch, delay_s
        if span_exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            span_exporter = OTLPSpanExporter(endpoint=_signal(endpoint, "traces"), timeout=EXPORT_TIMEOUT_S)
        if metric_reader is None:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            metric_reader = PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=_signal(endpoint, "metrics"), timeout=EXPORT_TIMEOUT_S),
                export_interval_millis=export_interval_s * 1000, export_timeout_millis=EXPORT_TIMEOUT_S * 1000)
        self.exporter = span_exporter
        self._collect = _Collect()
        # shutdown_on_exit=False: the SDK's own atexit waits on a hung collector; ours is bounded (close)
        self.tracer_provider = TracerProvider(resource=res, shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(self._collect)
        self.meter_provider = MeterProvider(resource=res, metric_readers=[metric_reader], shutdown_on_exit=False)
        self.tracer = self.tracer_provider.get_tracer("elfctl")
        self.meter = self.meter_provider.get_meter("elfctl")
        # The exporters log every failed export; the count (and `elfctl health`) says it once instead.
        logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)
        logging.getLogger("opentelemetry.sdk.metrics").setLevel(logging.CRITICAL)
        self._trees: collections.deque = collections.deque()
        self._queued = 0  # spans in _trees
        self._measures: collections.deque = collections.deque(maxlen=max_queue * 4)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._busy = False  # the thread holds popped work (flush waits for it)
        self._stop = False
        self.dropped = 0  # spans never delivered: queue full, export failed, left at close
        self.exported = 0
        self.last_error = ""
        self._thread = threading.Thread(target=self._run, name="elfctl-otel-export", daemon=True)
        self._thread.start()

    # -- the caller's side: appends only --------------------------------------------------------
    def start(self, name: str, attrs: dict[str, Any], parent: Record | None = None, kind: str = "client") -> Record:
        if parent is None:
            return Record(self, name, attrs, kind)
        child = Record(None, name, attrs, kind)
        parent.children.append(child)
        return child

    def _submit(self, root: Record) -> None:
        n = root.count()
        with self._lock:
            if self._stop or self._queued + n > self.max_queue:
                self.dropped += n
                self.last_error = self.last_error or "export queue full"
                return
            self._trees.append(root)
            self._queued += n
            full = self._queued >= self.batch
        if full:
            self._wake.set()

    def _measure(self, fn, value, attrs) -> None:
        self._measures.append((fn, value, attrs))

    def histogram(self, name: str, unit: str, description: str, boundaries: Sequence[float]) -> _Instrument:
        return _Instrument(self, self.meter.create_histogram(name, unit=unit, description=description,
                                                             explicit_bucket_boundaries_advisory=list(boundaries)))

    def counter(self, name: str, unit: str, description: str) -> _Instrument:
        return _Instrument(self, self.meter.create_counter(name, unit=unit, description=description))

    # -- the export thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.delay_s)
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        while True:
            with self._lock:
                self._busy = bool(self._trees or self._measures)
                if not self._busy:
                    return
                measures = [self._measures.popleft() for _ in range(len(self._measures))]
                trees, n = [], 0
                while self._trees and n < self.batch:
                    trees.append(self._trees.popleft())
                    n += trees[-1].count()
                self._queued -= n
            for tree in trees:
                measures += tree.measures
            for i, (fn, value, attrs) in enumerate(measures, 1):
                try:
                    fn(value, _clean(attrs))
                except Exception:  # noqa: BLE001 - one bad measurement must not stop the thread
                    pass
                if i % 8 == 0:
                    time.sleep(0)  # as in _export
            if trees:
                self._export(trees, n)

    def _export(self, trees: list[Record], n: int) -> None:
        try:
            for tree in trees:
                self._make(tree, None)
                time.sleep(0)  # hand the GIL back between trees: a caller woken by its answer is not kept waiting
            spans, self._collect.batch = self._collect.batch, []
            ok = self.exporter.export(spans) == SpanExportResult.SUCCESS
            error = "" if ok else "the collector did not accept the spans (down, refusing, or too slow)"
        except Exception as exc:  # noqa: BLE001 - an exporter bug must not kill the thread
            self._collect.batch = []
            ok, error = False, f"{type(exc).__name__}: {exc}"
        if ok:
            self.exported += n
        else:
            self.dropped += n
            self.last_error = error

    def _make(self, rec: Record, parent) -> None:
        span = self.tracer.start_span(rec.name, context=parent, kind=_KIND[rec.kind], attributes=_clean(rec.attrs),
                                      start_time=rec.start)
        for name, ts, attrs in rec.events:
            span.add_event(name, _clean(attrs), timestamp=ts)
        if rec.error is not None:
            span.set_status(Status(StatusCode.ERROR, rec.error or None))
        ctx = trace_api.set_span_in_context(span)
        for child in rec.children:
            self._make(child, ctx)
        span.end(end_time=rec.end_ns or time.time_ns())

    # -- control ---------------------------------------------------------------------------------------
    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until what was queued so far is exported (or dropped), and the metrics too."""
        ok = self._settled(timeout_s)
        return self.meter_provider.force_flush(int(timeout_s * 1000)) and ok

    def _settled(self, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        self._wake.set()
        while self._busy or self._trees or self._measures:
            if time.monotonic() >= end:
                return False
            self._wake.set()
            time.sleep(0.005)
        return True

    def close(self) -> None:
        """Export what is left within SHUTDOWN_S, then stop: never waits on a hung collector longer."""
        if self._stop:
            return
        self._settled(SHUTDOWN_S)
        with self._lock:
            self._stop = True
            self.dropped += self._queued  # what a hung collector kept from leaving
            self._trees.clear()
            self._queued = 0
        self._wake.set()
        done = threading.Thread(target=self.meter_provider.shutdown, kwargs={"timeout_millis": SHUTDOWN_S * 1000},
                                daemon=True)
        done.start()
        done.join(SHUTDOWN_S + EXPORT_TIMEOUT_S)
        try:
            self.exporter.shutdown()
        except Exception:  # noqa: BLE001
            pass


def _signal(endpoint: str, signal: str) -> str:
    """OTEL_EXPORTER_OTLP_ENDPOINT's rule: the base URL plus /v1/<signal>."""
    base = endpoint or "http://localhost:4318"
    return base.rstrip("/") + f"/v1/{signal}"
