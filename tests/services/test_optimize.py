"""`cost optimize` on generated usage: each recommendation's money and evidence, recomputed here."""

import datetime as dt

import pytest
from tests import usage_gen as g

from elfctl.adapters import model_catalog
from elfctl.services.cost import optimize

NOW = dt.datetime(2026, 3, 18, 15, 0, tzinfo=dt.UTC)
SINCE = "2026-02-16T00:00:00"


@pytest.fixture
def store(store_url, open_store):
    s = open_store(store_url)
    g.populate(s, days=45, rows=20_000, now=NOW)
    return s


def _by(recs, kind, team=None):
    return [r for r in recs.items if r.kind == kind and (team is None or r.team == team)]


def test_cheaper_model_of_the_same_provider_with_its_savings(store):
    recs = optimize.optimize(store, model_catalog.load(), now=NOW)
    [rec] = _by(recs, "cheaper_model", "marketing")
    assert rec.evidence["model"] == "gpt-4o" and rec.evidence["cheaper_model"] == "gpt-4o-mini"
    rows = store.query(
        "SELECT prompt_tokens AS p, completion_tokens AS c, cached_tokens AS k, cost_nanousd AS cost "
        "FROM api_usage WHERE team = 'marketing' AND model = 'gpt-4o' AND outcome = 'ok' "
        "AND ts >= ? AND completion_tokens <= 1024",
        [SINCE],
    )
    _, p_in, p_out, p_cached = g.MODELS["gpt-4o-mini"]
    on_mini = sum((r["p"] - r["k"]) * p_in + r["k"] * p_cached + r["c"] * p_out for r in rows)
    assert rec.evidence["calls"] == len(rows) > 100
    assert rec.evidence["cost_nanousd"] == sum(r["cost"] for r in rows)
    assert rec.savings_nanousd == sum(r["cost"] for r in rows) - on_mini
    # anthropic teams are offered the anthropic model, never an openai one
    [sup] = _by(recs, "cheaper_model", "support")
    assert (sup.evidence["model"], sup.evidence["cheaper_model"]) == ("claude-sonnet-4-5", "claude-haiku-4-5")
    assert not _by(recs, "cheaper_model", "ops")  # already on the cheapest openai model in use
    assert recs.items == sorted(recs.items, key=lambda r: -r.monthly_savings_nanousd)


def test_repeated_prompts(store):
    recs = optimize.optimize(store, model_catalog.load(), team="sales", now=NOW)
    [rec] = _by(recs, "cache_repeats")
    groups = store.query(
        "SELECT COUNT(*) AS n, SUM(cost_nanousd) AS cost FROM api_usage WHERE team = 'sales' "
        "AND ts >= ? AND outcome = 'ok' GROUP BY prompt_hash HAVING COUNT(*) > 1",
        [SINCE],
    )
    assert rec.evidence["repeated_calls"] == sum(int(x["n"]) - 1 for x in groups) > 50
    assert rec.savings_nanousd == sum(int(x["cost"]) * (int(x["n"]) - 1) // int(x["n"]) for x in groups)
    assert {r.team for r in recs.items if r.team} == {"sales"}


def test_budgets_and_unreliable_models(store):
    recs = optimize.optimize(store, model_catalog.load(), now=NOW)
    assert [r.team for r in _by(recs, "budget_low")] == ["research"]
    assert "sales" in [r.team for r in _by(recs, "budget_high")]
    assert [r.team for r in _by(recs, "no_budget")] == ["ops"]
    rates = store.query(
        "SELECT model, SUM(calls) AS n, SUM(errors) AS e, SUM(fallbacks) AS f FROM daily_cost_summary "
        "WHERE day >= '2026-02-16' GROUP BY model"
    )
    flagged = {
        r["model"] for r in rates if int(r["e"]) / int(r["n"]) >= 0.05 or int(r["f"]) / int(r["n"]) >= 0.10
    }
    assert flagged and {r.evidence["model"] for r in _by(recs, "unreliable_model")} == flagged
    for r in recs.items:
        assert r.evidence.get("text"), r  # every recommendation states its evidence
