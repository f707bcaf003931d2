"""Export as a user runs it: a separate process calls elfctl.llm with only OTEL_EXPORTER_OTLP_ENDPOINT
set; a real OTLP/HTTP receiver on loopback gets the span and the metrics (decoded with
opentelemetry-proto). A collector that is down or hangs: calls still answer, spans are dropped and
counted, and `elfctl health` shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.llm.test_calls import MSG, _team, usage
from tests.telemetry.conftest import seed
from tests.telemetry.receiver import Receiver, attrs, closed_port_url

CALL = """
from elfctl import llm
r = llm.completion(team="alpha", messages={msg!r}, api_base={url!r}, max_tokens=50)
llm.flush()
print(r._hidden_params["elfctl"]["request_id"])
"""


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ELFCTL_TELEMETRY"))}
    return {**env, **extra}


def test_otlp_http_export_from_a_team_process(llm_env, llm_server, receiver):
    project, store = llm_env
    _team(project)
    llm_server.answer("gpt-4o", prompt=321, completion=12)
    proc = subprocess.run([sys.executable, "-c", CALL.format(msg=MSG, url=llm_server.url)], cwd=project,
                          env=_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_SERVICE_NAME="alpha-agents"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    request_id = proc.stdout.split()[-1]
    row = store.query("SELECT * FROM api_usage WHERE request_id = ?", (request_id,))[0]
    spans = receiver.spans()  # sent at exit: the process flushed its queue before leaving
    roots = [(res, s) for res, s in spans if not s.parent_span_id]
    assert len(roots) == 1 and len(spans) == 2
    res, root = roots[0]
    assert attrs(res.attributes)["service.name"] == "alpha-agents"
    a = attrs(root.attributes)
    assert root.name == "chat openai/gpt-4o" and root.kind == 3  # SPAN_KIND_CLIENT
    assert a["gen_ai.usage.input_tokens"] == 321 and a["gen_ai.usage.output_tokens"] == 12
    assert a["elfctl.request_id"] == request_id and a["elfctl.team"] == "alpha"
    assert round(a["elfctl.cost.usd"] * 1e9) == row["cost_nanousd"]
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    metrics = receiver.metrics()
    tokens = metrics["gen_ai.client.token.usage"][0]
    assert tokens.unit == "{token}"
    by_type = {attrs(p.attributes)["gen_ai.token.type"]: p for p in tokens.histogram.data_points}
    assert by_type["input"].sum == 321 and by_type["output"].sum == 12
    assert list(by_type["input"].explicit_bounds) == [4.0**i for i in range(14)]
    assert metrics["gen_ai.client.operation.duration"][0].unit == "s"
    assert "elfctl.cost" in metrics


def test_otel_sdk_disabled_turns_it_off(llm_env, llm_server, receiver):
    project, store = llm_env
    _team(project)
    probe = CALL + "import sys\nprint(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    proc = subprocess.run([sys.executable, "-c", probe.format(msg=MSG, url=llm_server.url)], cwd=project,
                          env=_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_SDK_DISABLED="true"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"  # nothing from opentelemetry imported on the call path
    assert receiver.bodies["/v1/traces"] == []


def _drop_setup(project, endpoint, **kw):
    from elfctl import llm
    from elfctl.adapters.otel import Pipeline

    # the real OTLP exporter, a queue of 4 spans: what a long outage does to the default 2048, sooner
    got, s = seed(project, endpoint=endpoint, memory=False, max_queue=4, **kw)
    llm.reset()
    assert isinstance(got.pipeline, Pipeline)
    return got, s


@pytest.mark.parametrize("collector", ["down", "hangs"])
def test_a_collector_down_or_hung_never_fails_a_call_and_drops_are_counted(llm_env, llm_server, collector,
                                                                          monkeypatch):
    from typer.testing import CliRunner

    from elfctl import bootstrap, llm
    from elfctl.cli.main import app

    project, store = llm_env
    _team(project)
    hung = Receiver(hang=True) if collector == "hangs" else None
    # a collector URL with a password (basic auth in front of a collector): never shown
    url = hung.url if hung else closed_port_url().replace("http://", "http://otel:s3cret-pw@")
    got, s = _drop_setup(project, url)
    try:
        for _ in range(8):  # 8 calls, 2 spans each, into a queue of 4 that cannot drain
            resp = llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=20)
            assert resp._hidden_params["elfctl"]["cost_nanousd"] > 0
        assert len(usage(store)) == 8  # every call answered and recorded
        got.pipeline.flush(0.1)
        assert got.pipeline.dropped >= 8  # at least the overflow: 16 spans, 4 queued
        reported = bootstrap._pipelines[s].drops.report()
        assert reported == got.pipeline.dropped
        monkeypatch.chdir(project)
        out = CliRunner().invoke(app, ["health", "--json", "--component", "telemetry"], catch_exceptions=False)
        check = json.loads(out.stdout)["checks"]["telemetry"][0]
        assert check["status"] == "warn" and check["observedValue"] == reported
        assert f"{reported} span(s) dropped" in check["output"]
        assert "s3cret-pw" not in out.output
        assert not [r for r in store.query("SELECT * FROM platform_actions") if "s3cret-pw" in str(r)]
    finally:
        llm.reset()
        bootstrap._pipelines.pop(s, None)
        got.pipeline.close()
        if hung:
            hung.stop()
