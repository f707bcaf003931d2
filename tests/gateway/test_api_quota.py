"""The gateway applies the api_quota policy: a team whose budget is critically used (95% by default)
is served by the next cheaper model of its chain, and the trail says when that began."""

from __future__ import annotations

import datetime as dt

import openai

from tests.gateway.conftest import wait_rows, write_team

MSG = [{"role": "user", "content": "hello"}]


def _spend(store, team: str, usd: float) -> None:
    from elfctl.domain.clock import iso
    from elfctl.domain.usage import UsageRow
    from elfctl.services.cost import ledger

    ledger.record(store, [UsageRow(request_id=f"seed-{team}", ts=iso(dt.datetime.now(dt.UTC)), team=team,
                                   requested_model="gpt-4o", model="gpt-4o", cost_nanousd=int(usd * 1e9),
                                   priced=True)])


def test_a_team_at_critical_budget_use_is_served_by_its_cheaper_model(gw_env, gateway, mint, llm_server):
    from elfctl.services.actions import trail

    project, store = gw_env
    write_team(project, "nearly", "gpt-4o", ("gpt-4o-mini",), budget={"daily_usd": 1, "hard_action": "block"})
    write_team(project, "roomy", "gpt-4o", ("gpt-4o-mini",), budget={"daily_usd": 1, "hard_action": "block"})
    _spend(store, "nearly", 0.96)
    _spend(store, "roomy", 0.50)
    for team in ("nearly", "roomy"):
        client = openai.OpenAI(base_url=gateway.base_url, api_key=mint(team), max_retries=0, timeout=180)
        client.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=5)
    rows = {r["team"]: r for r in wait_rows(store, 4) if not r["request_id"].startswith("seed-")}
    assert (rows["nearly"]["requested_model"], rows["nearly"]["model"]) == ("gpt-4o-mini", "gpt-4o-mini")
    assert rows["roomy"]["model"] == "gpt-4o"
    acted = trail.recent(store, team="nearly")
    assert [(a.resource, a.strategy, a.target, a.actor) for a in acted] == [
        ("api_quota", "degrade_service", "gpt-4o -> gpt-4o-mini", "gateway")]
    assert "96% used" in acted[0].trigger
