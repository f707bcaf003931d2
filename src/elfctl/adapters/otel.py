"""OpenTelemetry: the only module importing it. A tracer and a meter exporting over OTLP/HTTP, spans
queued in a bounded queue that never blocks the caller, and the count of spans dropped.

The SDK's BatchSpanProcessor drops silently (a log line) when its queue is full and forgets a batch
whose export failed; elfctl must count both (`elfctl health` shows them), so the queue is ours: a
deque with a cap, one daemon thread exporting batches, and counters. A collector that is down or
hangs costs the calling thread one append; its spans are dropped and counted instead.
"""

from __future__ import annotations

import collections
import logging
import threading
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


class BoundedProcessor(SpanProcessor):
    """Ended spans go to a bounded queue; a daemon thread exports them in batches."""

    def __init__(self, exporter: SpanExporter, max_queue: int = 2048, batch: int = 512, delay_s: float = 1.0):
        self.exporter, self.max_queue, self.batch, self.delay_s = exporter, max_queue, batch, delay_s
        self._queue: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stop = False
        self.dropped = 0  # spans never delivered: queue full, failed export, left at shutdown
        self.exported = 0
        self.last_error = ""
        self._thread = threading.Thread(target=self._run, name="elfctl-otel-export", daemon=True)
        self._thread.start()

    def on_start(self, span, parent_context=None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self._stop:
            self.dropped += 1
            return
        with self._lock:
            if len(self._queue) >= self.max_queue:
                self.dropped += 1
                self.last_error = self.last_error or "export queue full"
                return
            self._queue.append(span)
            full = len(self._queue) >= self.batch
        if full:
            self._wake.set()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.delay_s)
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._idle.set()
                    return
                self._idle.clear()
                spans = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
            try:
                ok = self.exporter.export(spans) == SpanExportResult.SUCCESS
                error = "" if ok else "export failed"
            except Exception as exc:  # noqa: BLE001 - an exporter bug must not kill the thread
                ok, error = False, f"{type(exc).__name__}: {exc}"
            if ok:
                self.exported += len(spans)
            else:
                self.dropped += len(spans)
                self.last_error = error

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self._wake.set()
        with self._lock:
            if self._queue:
                self._idle.clear()
        return self._idle.wait(timeout_millis / 1000)

    def shutdown(self) -> None:
        if self._stop:
            return
        self.force_flush(int(SHUTDOWN_S * 1000))
        self._stop = True
        self._wake.set()
        with self._lock:
            self.dropped += len(self._queue)  # what a hung collector kept from leaving
            self._queue.clear()
        try:
            self.exporter.shutdown()
        except Exception:  # noqa: BLE001
            pass


class _LastError(SpanExporter):
    """The OTLP exporter, remembering why an export failed (the SDK only logs it)."""

    def __init__(self, inner: SpanExporter, processor_ref: list):
        self.inner, self.ref = inner, processor_ref

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        if result != SpanExportResult.SUCCESS and self.ref:
            self.ref[0].last_error = f"collector {getattr(self.inner, '_endpoint', '')} did not accept the spans"
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()


class Span:
    """One span, in the terms the services use."""

    __slots__ = ("_span",)

    def __init__(self, span):
        self._span = span

    def set(self, attrs: dict[str, Any]) -> None:
        self._span.set_attributes({k: v for k, v in attrs.items() if v is not None})

    def event(self, name: str, attrs: dict[str, Any] | None = None) -> None:
        self._span.add_event(name, {k: v for k, v in (attrs or {}).items() if v is not None})

    def fail(self, error_type: str, description: str = "") -> None:
        self._span.set_attribute("error.type", error_type)
        self._span.set_status(Status(StatusCode.ERROR, description or None))

    def end(self) -> None:
        self._span.end()


class Pipeline:
    """A tracer and a meter with their exporters. `span_exporter`/`metric_reader` replace OTLP (tests)."""

    def __init__(self, service_name: str, endpoint: str = "", resource: dict[str, str] | None = None,
                 span_exporter: SpanExporter | None = None, metric_reader: MetricReader | None = None,
                 max_queue: int = 2048, export_interval_s: float = 10.0):
        res = Resource.create({"service.name": service_name, **(resource or {})})
        self.endpoint = endpoint
        ref: list = []
        if span_exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            span_exporter = _LastError(OTLPSpanExporter(endpoint=_signal(endpoint, "traces"),
                                                        timeout=EXPORT_TIMEOUT_S), ref)
        if metric_reader is None:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            metric_reader = PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=_signal(endpoint, "metrics"), timeout=EXPORT_TIMEOUT_S),
                export_interval_millis=export_interval_s * 1000, export_timeout_millis=EXPORT_TIMEOUT_S * 1000)
        self.processor = BoundedProcessor(span_exporter, max_queue=max_queue)
        ref.append(self.processor)
        # shutdown_on_exit=False: the SDK's own atexit waits on a hung collector; ours is bounded (close)
        self.tracer_provider = TracerProvider(resource=res, shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(self.processor)
        self.meter_provider = MeterProvider(resource=res, metric_readers=[metric_reader], shutdown_on_exit=False)
        self.tracer = self.tracer_provider.get_tracer("elfctl")
        self.meter = self.meter_provider.get_meter("elfctl")
        # The exporters log every failed export; the count (and `elfctl health`) says it once instead.
        logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)
        logging.getLogger("opentelemetry.sdk.metrics").setLevel(logging.CRITICAL)

    def start(self, name: str, attrs: dict[str, Any], parent: Span | None = None, kind: str = "client") -> Span:
        ctx = trace_api.set_span_in_context(parent._span) if parent is not None else None
        return Span(self.tracer.start_span(name, context=ctx, kind=_KIND[kind],
                                           attributes={k: v for k, v in attrs.items() if v is not None}))

    def histogram(self, name: str, unit: str, description: str, boundaries: Sequence[float]):
        return self.meter.create_histogram(name, unit=unit, description=description,
                                           explicit_bucket_boundaries_advisory=list(boundaries))

    def counter(self, name: str, unit: str, description: str):
        return self.meter.create_counter(name, unit=unit, description=description)

    @property
    def dropped(self) -> int:
        return self.processor.dropped

    @property
    def last_error(self) -> str:
        return self.processor.last_error

    def flush(self, timeout_s: float = 5.0) -> bool:
        ok = self.processor.force_flush(int(timeout_s * 1000))
        return self.meter_provider.force_flush(int(timeout_s * 1000)) and ok

    def close(self) -> None:
        """Export what is left within SHUTDOWN_S each, then stop; never waits on a hung collector longer."""
        self.processor.shutdown()
        done = threading.Thread(target=self.meter_provider.shutdown, kwargs={"timeout_millis": SHUTDOWN_S * 1000},
                                daemon=True)
        done.start()
        done.join(SHUTDOWN_S + EXPORT_TIMEOUT_S)
        self.tracer_provider.shutdown()


def _signal(endpoint: str, signal: str) -> str:
    """OTEL_EXPORTER_OTLP_ENDPOINT's rule: the base URL plus /v1/<signal>."""
    base = endpoint or "http://localhost:4318"
    return base.rstrip("/") + f"/v1/{signal}"
