"""Telemetry fixtures: a project with telemetry configured, whose exporters are the SDK's in-memory ones.

`otel` seeds the composition root's pipeline for the project's settings with an InMemorySpanExporter
and an InMemoryMetricReader, so elfctl.llm (built by bootstrap as in production) records into them.
"""

from __future__ import annotations

import pytest

from tests.llm.conftest import llm_env  # noqa: F401

ENDPOINT = "http://127.0.0.1:4318"


class Otel:
    def __init__(self, pipeline, spans, reader):
        self.pipeline, self.exporter, self.reader = pipeline, spans, reader

    def spans(self):
        assert self.pipeline.flush(5)
        return list(self.exporter.get_finished_spans())

    def metrics(self) -> dict:
        """metric name -> list of data points."""
        assert self.pipeline.flush(5)  # measurements are recorded by the export thread
        out: dict = {}
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    out.setdefault(m.name, []).extend(m.data.data_points)
        return out


def seed(project, endpoint=ENDPOINT, extra: str = "", memory: bool = True, **kw):
    """Telemetry on in the project's elfctl.toml, its pipeline built here: spans to the in-memory exporter
    (memory=False: the real OTLP/HTTP one, to `endpoint`), metrics to an in-memory reader."""
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from elfctl import bootstrap, config
    from elfctl.adapters.otel import Pipeline
    from elfctl.services.telemetry import settings as tel
    from elfctl.services.telemetry.drops import DropReporter
    from elfctl.services.telemetry.genai import Telemetry

    with open(project / "elfctl.toml", "a") as f:
        f.write(f'\n[telemetry]\nendpoint = "{endpoint}"\n{extra}\n')
    s = tel.from_config(config.load(cwd=project))
    exporter, reader = (InMemorySpanExporter() if memory else None), InMemoryMetricReader()
    pipeline = Pipeline(s.service_name, s.endpoint, span_exporter=exporter, metric_reader=reader, **kw)
    hooks = Telemetry(pipeline, s.capture_content)
    hooks.drops = DropReporter(pipeline, "test")
    bootstrap._pipelines[s] = hooks
    return Otel(pipeline, exporter, reader), s


@pytest.fixture
def otel(llm_env):  # noqa: F811
    from elfctl import bootstrap, llm

    project, store = llm_env
    got, s = seed(project)
    llm.reset()
    yield got
    llm.reset()
    bootstrap._pipelines.pop(s, None)
    got.pipeline.close()
