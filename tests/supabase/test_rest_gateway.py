"""`elfctl gateway serve` started by hand with only SUPABASE_URL/SUPABASE_KEY set: the whole gateway
on Supabase's REST API (the PostgREST-compatible test server over a Supabase-shaped Postgres, each
request as service_role), its provider tests/llm_server.py, its clients the official openai SDK and
httpx. The guard: every route driven, and no "needs a database connection" in the gateway's log (the
line a REST store raises for any SQL). Read back directly from the database behind the API."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from elfctl.domain.registry import Entry
from elfctl.services.gateway import keys
from elfctl.services.registry import entries as reg
from tests.gateway.conftest import FAST, GatewayProcess, write_team
from tests.registry.test_prober import Team, deployed

MSG = [{"role": "user", "content": "hello"}]
NEEDS_SQL = "needs a database connection"


@pytest.fixture
def rest_gateway(rest, db, project, llm_server, monkeypatch):
    """start() -> a `gateway serve` process whose only store settings are SUPABASE_URL/SUPABASE_KEY."""
    with open(project / "elfctl.toml", "a") as f:
        f.write(FAST + "\n[discovery]\nprobe_period_s = 0.5\n")
    write_team(project, "alpha", "gpt-4o-mini", ("openai/gpt-4o",))
    write_team(project, "emb", "text-embedding-3-small")
    write_team(project, "nearly", "gpt-4o", ("gpt-4o-mini",), budget={"daily_usd": 1, "hard_action": "block"})
    monkeypatch.setenv("SUPABASE_URL", rest.url)
    monkeypatch.setenv("SUPABASE_KEY", rest.service_key)
    monkeypatch.delenv("SUPABASE_DB_URL", raising=False)
    started = []

    def start() -> GatewayProcess:
        g = GatewayProcess(project, "", llm_server.url).start()  # ELFCTL_STORE_URL empty: the REST keys decide
        started.append(g)
        return g

    yield start
    for g in started:
        g.stop()


@pytest.fixture
def down_team():
    t = Team("down")
    yield t
    t.stop()


def _rows(db, sql: str, params=(), n: int = 1, timeout_s: float = 15) -> list[dict]:
    """The rows once there are at least n (the gateway writes its ledger just after the answer)."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = db.query(sql, params)
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def _spend(rest_store, team: str, usd: float) -> None:
    import datetime as dt

    from elfctl.domain.clock import iso
    from elfctl.domain.usage import UsageRow
    from elfctl.services.cost import ledger

    ledger.record(rest_store, [UsageRow(request_id=f"seed-{team}", ts=iso(dt.datetime.now(dt.UTC)), team=team,
                                        requested_model="gpt-4o", model="gpt-4o", cost_nanousd=int(usd * 1e9),
                                        priced=True)])


def test_every_route_of_a_gateway_on_the_rest_store_runs_without_sql(rest_gateway, rest, rest_store, db, llm_server,
                                                                     down_team):
    # keys and registry entries are the operator's side (`gateway key create`, deploy): written through `db`
    _spend(rest_store, "nearly", 0.96)  # 96% of its day: api_quota serves its cheaper model
    reg.register(db, Entry("alpha", kind="team", url="http://elf-alpha:8080", capabilities=("seo",)))
    deployed(db, "critic", down_team.port)  # the prober finds it failing: a trail row and an alert
    alpha, nearly, emb = keys.mint(db, "alpha"), keys.mint(db, "nearly"), keys.mint(db, "emb")
    llm_server.ratelimit("gpt-4o-mini", remaining_requests=60, limit_requests=100, reset_requests="30s")
    gw = rest_gateway()

    health = httpx.get(gw.url + "/health", timeout=30)
    assert health.status_code == 200, health.text
    assert {k: v[0]["status"] for k, v in health.json()["checks"].items()} == {
        "store": "pass", "llm": "pass", "budgets": "warn"}  # nearly is past its soft limit
    client = openai.OpenAI(base_url=gw.base_url, api_key=alpha, max_retries=0, timeout=60)
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5, stream=True,
                                            stream_options={"include_usage": True})
    assert [c for c in stream if c.usage][0].usage.total_tokens == 15
    embed = openai.OpenAI(base_url=gw.base_url, api_key=emb, max_retries=0, timeout=60)
    assert embed.embeddings.create(model="text-embedding-3-small", input="hi").data
    assert {m.id for m in client.models.list()} >= {"gpt-4o-mini", "openai/gpt-4o"}
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    cheap = openai.OpenAI(base_url=gw.base_url, api_key=nearly, max_retries=0, timeout=60)
    assert cheap.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=MSG, max_tokens=5).headers["x-elfctl-model"] == "gpt-4o-mini"

    auth = {"authorization": f"Bearer {alpha}"}
    assert httpx.get(gw.base_url + "/providers", headers=auth).status_code == 200
    found = httpx.get(gw.base_url + "/registry", params={"capability": "seo"}, headers=auth)
    assert [e["name"] for e in found.json()["data"]] == ["alpha"], found.text
    assert httpx.get(gw.base_url + "/registry/alpha", headers=auth).json()["capabilities"] == ["seo"]
    beat = httpx.put(gw.base_url + "/registry/alpha/heartbeat", json={"status": "warn", "note": "busy"}, headers=auth)
    assert beat.status_code == 200, beat.text
    assert httpx.get(gw.url + "/teams/alpha/.well-known/agent-card.json").status_code == 200

    usage = _rows(db, "SELECT team, requested_model, model, prompt_tokens FROM api_usage WHERE request_id NOT LIKE "
                      "'seed-%' ORDER BY id", n=4)
    assert sorted((r["team"], r["model"]) for r in usage) == [
        ("alpha", "gpt-4o-mini"), ("alpha", "gpt-4o-mini"), ("emb", "text-embedding-3-small"),
        ("nearly", "gpt-4o-mini")], usage
    assert db.query("SELECT count(*) AS n FROM api_usage")[0]["n"] == 5  # each call once, the seed row beside
    assert db.query("SELECT check_status, note FROM registry_entries WHERE name = 'alpha'") == [
        {"check_status": "warning", "note": "busy"}]
    assert db.query("SELECT remaining_requests, limit_requests FROM provider_limits WHERE model = 'gpt-4o-mini'") == [
        {"remaining_requests": 60, "limit_requests": 100}]
    acted = _rows(db, "SELECT resource, target, actor FROM platform_actions ORDER BY resource", n=2)
    assert [(a["resource"], a["target"]) for a in acted] == [
        ("api_quota", "gpt-4o -> gpt-4o-mini"), ("registry", "critic")], acted
    assert _rows(db, "SELECT severity FROM notify_events WHERE team = 'critic'") == [{"severity": "critical"}]

    gw.stop()
    log = gw.log.read_text()
    assert NEEDS_SQL not in log and "Traceback" not in log, log[-3000:]
    called = {r["path"].rsplit("/", 1)[1] for r in rest.requests if "/rpc/" in r["path"]}
    assert {"elfctl_key_lookup", "elfctl_record_usage", "elfctl_provider_limit_save", "elfctl_heartbeat",
            "elfctl_record_action", "elfctl_reserve"} <= called, called


@pytest.mark.parametrize("fault", [{"status": 503}, {"stall": 5}, {"drop": True}], ids=["503", "stall", "drop"])
def test_the_rest_api_failing_while_the_gateway_serves_is_a_503_and_it_recovers(
        rest_gateway, rest, db, llm_server, monkeypatch, fault):
    monkeypatch.setenv("ELFCTL_SUPABASE_TIMEOUT_S", "2")  # a stalled API is cut here, not at the default 10 s
    key = keys.mint(db, "alpha")
    gw = rest_gateway()

    def client():  # a new connection per call: a kept-alive one races the gateway's 1 s idle close (FAST)
        return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=60)

    client().chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert _rows(db, "SELECT id FROM api_usage", n=1)

    rest.behave(**fault)
    time.sleep(1.0)  # past the key cache's 0.5 s: the next request asks the store
    with pytest.raises(openai.APIStatusError) as refused:
        client().chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert refused.value.status_code == 503, refused.value
    said = refused.value.response.json()["error"]
    assert "Supabase REST API" in said["message"] and key not in json.dumps(said), said
    health = httpx.get(gw.url + "/health", timeout=30)
    assert health.status_code == 503 and health.json()["checks"]["store"][0]["status"] == "fail", health.text

    rest.behave()  # the API is back: the same gateway serves again, no restart
    done = client().chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    assert done.usage.total_tokens == 15
    assert httpx.get(gw.url + "/health", timeout=30).status_code == 200
    assert len(_rows(db, "SELECT id FROM api_usage", n=2)) == 2  # the refused call reached no provider, no ledger
    assert llm_server.calls("gpt-4o-mini") == 2
    gw.stop()
    assert rest.service_key not in gw.log.read_text()


def test_two_gateways_on_the_rest_store_sweep_each_transition_once(rest_gateway, rest, db):
    """No lock over REST (no session to hold one): each change is a conditional function call
    (elfctl_registry_sweep), so two gateways sweeping every 0.5 s still write each transition once."""
    from tests.registry.test_gateway_sweep import UNWARNED, WARNED, _idle, _registry_rows, _wait_gone

    for i in range(3):
        _idle(db, f"idle-{i}")
    gws = [rest_gateway(), rest_gateway()]
    for i in range(3):
        _wait_gone(db, f"idle-{i}")
    for i in range(3):
        assert _registry_rows(db, f"idle-{i}") in (WARNED, UNWARNED), i
    called = {r["path"].rsplit("/", 1)[1] for r in rest.requests if "/rpc/" in r["path"]}
    assert "elfctl_registry_sweep" in called
    for g in gws:
        g.stop()
        assert NEEDS_SQL not in g.log.read_text()
