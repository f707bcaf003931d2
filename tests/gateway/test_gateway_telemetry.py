"""The gateway's calls are traced like elfctl.llm's (one call path, two front doors): a gateway process
with only OTEL_EXPORTER_OTLP_ENDPOINT set sends a real OTLP/HTTP receiver the GenAI span of each call,
carrying the team and revision from the key and the agent from the header."""

from __future__ import annotations

import openai
import pytest

from tests.gateway.conftest import GatewayProcess, wait_rows
from tests.telemetry.receiver import Receiver, attrs

MSG = [{"role": "user", "content": "hello"}]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def test_a_gateway_call_is_one_genai_span_with_team_agent_and_revision(gw_env, store_url, llm_server, mint,
                                                                        receiver, monkeypatch):
    project, store = gw_env
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    llm_server.answer("gpt-4o-mini", prompt=40, completion=9)
    gateway = GatewayProcess(project, store_url, llm_server.url).start()
    try:
        client = openai.OpenAI(base_url=gateway.base_url, api_key=mint("alpha", revision=3), max_retries=0,
                               default_headers={"X-Elfctl-Agent": "writer"})
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
        row = wait_rows(store, 1)[0]
    finally:
        gateway.stop()  # the exporter sends what it holds as the process ends
    roots = [s for _res, s in receiver.spans() if not s.parent_span_id]
    assert len(roots) == 1
    a = attrs(roots[0].attributes)
    assert roots[0].name == "chat gpt-4o-mini"
    assert (a["elfctl.team"], a["elfctl.agent"], a["elfctl.revision"]) == ("alpha", "writer", 3)
    assert a["gen_ai.usage.input_tokens"] == 40 and a["gen_ai.usage.output_tokens"] == 9
    assert a["elfctl.request_id"] == row["request_id"]
    assert round(a["elfctl.cost.usd"] * 1e9) == row["cost_nanousd"]
