"""Every elfctl.llm call is one GenAI CLIENT span with its attempts as children, and the GenAI metrics;
through real litellm against tests/llm_server.py, exported into the SDK's in-memory exporter/reader."""

from __future__ import annotations

import asyncio

import pytest

from tests.llm.test_calls import MSG, _team, usage

SPAN_KIND_CLIENT = "SpanKind.CLIENT"


def _call_and_attempts(spans):
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 1, [s.name for s in spans]
    root = roots[0]
    kids = sorted((s for s in spans if s.parent and s.parent.span_id == root.context.span_id),
                  key=lambda s: s.start_time)
    assert len(kids) == len(spans) - 1
    return root, kids


def test_one_call_one_span_with_genai_attributes_and_ledger_cost(otel, llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project)
    llm_server.answer("gpt-4o", prompt=1000, completion=200)
    resp = llm.completion(team="alpha", agent="writer", messages=MSG, api_base=llm_server.url, max_tokens=300,
                          temperature=0.2)
    row = usage(store)[-1]
    root, kids = _call_and_attempts(otel.spans())
    a = dict(root.attributes)
    assert root.name == "chat openai/gpt-4o" and str(root.kind) == SPAN_KIND_CLIENT
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "openai/gpt-4o" and a["gen_ai.response.model"] == resp.model
    assert a["gen_ai.response.id"] == resp.id and list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert a["gen_ai.usage.input_tokens"] == 1000 and a["gen_ai.usage.output_tokens"] == 200
    assert a["gen_ai.request.max_tokens"] == 300 and a["gen_ai.request.temperature"] == 0.2
    assert a["elfctl.team"] == "alpha" and a["elfctl.agent"] == "writer" and a["elfctl.cache.hit"] is False
    assert round(a["elfctl.cost.usd"] * 1e9) == row["cost_nanousd"] == 1000 * 2500 + 200 * 10000
    assert a["elfctl.request_id"] == row["request_id"] and "elfctl.fallback.reason" not in a
    assert root.status.is_ok and "error.type" not in a
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a  # content off by default
    assert [k.name for k in kids] == ["chat openai/gpt-4o"] and kids[0].attributes["elfctl.attempt"] == 1


def test_retry_and_fallback_are_child_spans_each_with_its_model(otel, llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project)
    llm_server.fail("gpt-4o", status=500)
    llm_server.answer("gpt-4o-mini", prompt=100, completion=10)
    llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=20)
    row = usage(store)[-1]
    root, kids = _call_and_attempts(otel.spans())
    assert [(k.attributes["gen_ai.request.model"], k.attributes.get("error.type")) for k in kids] == [
        ("openai/gpt-4o", "server"), ("openai/gpt-4o", "server"), ("openai/gpt-4o-mini", None)]
    assert [k.status.is_ok for k in kids] == [False, False, True]
    a = root.attributes
    assert root.name == "chat openai/gpt-4o" and root.status.is_ok  # the call succeeded, on its fallback
    assert a["elfctl.model"] == "openai/gpt-4o-mini" and a["elfctl.fallback.reason"] == row["fallback_reason"]
    assert "openai/gpt-4o: server" in a["elfctl.fallback.reason"]
    assert round(a["elfctl.cost.usd"] * 1e9) == row["cost_nanousd"] == 100 * 150 + 10 * 600


def test_every_model_failing_is_an_error_span(otel, llm_env, llm_server):
    from elfctl import llm
    from elfctl.errors import ElfError

    project, store = llm_env
    _team(project)
    llm_server.fail("gpt-4o", status=503, times=10)
    llm_server.fail("gpt-4o-mini", status=503, times=10)
    with pytest.raises(ElfError):
        llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=20)
    root, kids = _call_and_attempts(otel.spans())
    assert not root.status.is_ok and root.attributes["error.type"] == "exhausted"
    assert "every model failed" in root.status.description
    assert len(kids) == 4 and all(k.attributes["error.type"] == "server" for k in kids)
    points = otel.metrics()["gen_ai.client.operation.duration"]
    assert [p.attributes.get("error.type") for p in points] == ["exhausted"] and points[0].count == 1
    assert "gen_ai.client.token.usage" not in otel.metrics()  # no tokens were used


def test_bad_request_and_budget_block_end_their_span(otel, llm_env, llm_server):
    from elfctl import llm
    from elfctl.domain.budget import BudgetExceeded
    from elfctl.errors import ElfError

    project, store = llm_env
    _team(project, fallbacks=())
    llm_server.fail("gpt-4o", status=400)
    with pytest.raises(ElfError):
        llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    _team(project, name="beta", budget={"daily_usd": "0.000001", "hard_action": "block"})
    with pytest.raises(BudgetExceeded):
        llm.completion(team="beta", messages=MSG, api_base=llm_server.url, max_tokens=500)
    spans = otel.spans()
    roots = {s.attributes["elfctl.team"]: s for s in spans if s.parent is None}
    assert roots["alpha"].attributes["error.type"] == "bad_request"
    assert roots["beta"].attributes["error.type"] == "budget_exceeded"
    assert not any(s.parent and s.parent.span_id == roots["beta"].context.span_id for s in spans)  # never called


def test_metrics_tokens_duration_cost_with_the_conventions_buckets(otel, llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project)
    llm_server.answer("gpt-4o", prompt=1000, completion=200)
    for _ in range(2):
        llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=300)
    rows = usage(store)
    m = otel.metrics()
    tokens = {p.attributes["gen_ai.token.type"]: p for p in m["gen_ai.client.token.usage"]}
    assert tokens["input"].sum == 2000 and tokens["output"].sum == 400 and tokens["input"].count == 2
    assert list(tokens["input"].explicit_bounds) == [4**i for i in range(14)]
    assert tokens["input"].explicit_bounds[-1] == 67108864
    assert tokens["input"].attributes["gen_ai.request.model"] == "openai/gpt-4o"
    assert tokens["input"].attributes["gen_ai.provider.name"] == "openai"
    dur = m["gen_ai.client.operation.duration"]
    assert len(dur) == 1 and dur[0].count == 2
    assert [round(b, 2) for b in dur[0].explicit_bounds] == [0.01 * 2**i for i in range(14)]
    assert dur[0].explicit_bounds[-1] == pytest.approx(81.92)
    (cost,) = m["elfctl.cost"]
    assert dict(cost.attributes) == {"elfctl.team": "alpha", "elfctl.model": "openai/gpt-4o"}
    assert round(cost.value * 1e9) == sum(r["cost_nanousd"] for r in rows)


def test_async_call_traced_the_same(otel, llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project)
    llm_server.fail("gpt-4o", status=500)
    resp = asyncio.run(llm.acompletion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=20))
    root, kids = _call_and_attempts(otel.spans())
    assert root.attributes["gen_ai.response.id"] == resp.id
    assert [k.attributes["gen_ai.request.model"] for k in kids] == ["openai/gpt-4o"] * 2 + ["openai/gpt-4o-mini"]


def test_an_exporter_that_raises_never_fails_a_call(llm_env, llm_server):
    from opentelemetry.sdk.trace.export import SpanExporter

    from elfctl import bootstrap, llm
    from tests.telemetry.conftest import seed

    class Broken(SpanExporter):
        def export(self, spans):
            raise RuntimeError("exporter bug")

    project, store = llm_env
    _team(project)
    got, s = seed(project)
    got.pipeline.exporter = Broken()
    llm.reset()
    try:
        for _ in range(3):
            assert llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=20).id
        assert got.pipeline.flush(5) and got.pipeline.dropped == 6 and "exporter bug" in got.pipeline.last_error
        assert len(usage(store)) == 3
    finally:
        llm.reset()
        bootstrap._pipelines.pop(s, None)
        got.pipeline.close()
