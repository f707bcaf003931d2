"""Dashboard figures from the rollup, checked against the raw usage rows, on SQLite and Postgres."""

import datetime as dt

import pytest
from tests import usage_gen as g

from elfctl.errors import InputError
from elfctl.services.cost import views as cost_views

NOW = dt.datetime(2026, 3, 18, 15, 0, tzinfo=dt.UTC)  # a Wednesday afternoon


@pytest.fixture
def store(store_url, open_store):
    s = open_store(store_url)
    g.populate(s, days=70, rows=20_000, now=NOW)
    return s


def _raw(store, where="1=1", params=()):
    """Independent figures from api_usage itself (what the rollup must agree with)."""
    rows = store.query(
        f"SELECT team, model, day, cost_nanousd, outcome, fallback_reason FROM api_usage WHERE {where}",
        params,
    )
    return rows


def test_dashboard_figures_match_the_raw_usage(store):
    d = cost_views.dashboard(store, days=14, now=NOW)
    assert (d.today, d.month_start, d.since, d.until) == (
        "2026-03-18",
        "2026-03-01",
        "2026-03-05",
        "2026-03-18",
    )
    raw = _raw(store)
    for t in d.teams:
        mine = [r for r in raw if r["team"] == t.team]
        assert t.today_nanousd == sum(r["cost_nanousd"] for r in mine if r["day"] == "2026-03-18")
        assert t.month_nanousd == sum(
            r["cost_nanousd"] for r in mine if "2026-03-01" <= r["day"] <= "2026-03-18"
        )
    period = [r for r in raw if "2026-03-05" <= r["day"] <= "2026-03-18"]
    assert d.period_totals.cost_nanousd == sum(r["cost_nanousd"] for r in period)
    assert d.period_totals.calls == len(period)
    assert d.period_totals.errors == sum(r["outcome"] != "ok" for r in period)
    assert d.period_totals.fallbacks == sum(r["fallback_reason"] is not None for r in period)
    for m in d.models:
        assert m.cost_nanousd == sum(r["cost_nanousd"] for r in period if r["model"] == m.model)
        assert m.calls == sum(r["model"] == m.model for r in period)
    assert [x.day for x in d.daily] == [f"2026-03-{i:02d}" for i in range(5, 19)]
    assert d.daily[0].cost_nanousd == sum(r["cost_nanousd"] for r in raw if r["day"] == "2026-03-05")
    assert sum(x.cost_nanousd for x in d.daily) == d.period_totals.cost_nanousd


def test_budgets_levels_risk_and_breakers(store):
    d = cost_views.dashboard(store, days=7, now=NOW)
    by = {t.team: t for t in d.teams}
    # research overspends its profile budget by design, sales is far below, ops has no budget.
    assert by["research"].month_level == "hard" and by["research"].month_ratio > 1
    assert by["sales"].month_level == "ok" and by["sales"].month_ratio < 0.2
    assert by["ops"].today_level == "none" and by["ops"].hit_today is None
    assert d.at_risk[0] == "research" and "sales" not in d.at_risk
    # Today is 15/24 done: the projection adds the rest of the day as on recent Wednesdays.
    assert by["marketing"].projected_today_nanousd > by["marketing"].today_nanousd * 1.2
    assert [(b.name, b.state) for b in d.breakers] == [("llm:gpt-4o", "open")]
    store.execute("UPDATE breaker_state SET state = 'closed'")
    assert cost_views.dashboard(store, days=7, now=NOW).breakers == []


def test_team_filter_and_bad_input(store):
    d = cost_views.dashboard(store, team="legal", days=7, now=NOW)
    assert [t.team for t in d.teams] == ["legal"]
    assert {m.model for m in d.models} == {"claude-sonnet-4-5"}
    with pytest.raises(InputError, match="--since"):
        cost_views.dashboard(store, since="2026-13-01", now=NOW)
    with pytest.raises(InputError, match="--days 0"):
        cost_views.dashboard(store, days=0, now=NOW)


def test_recording_console_shows_the_numbers(store):
    from rich.console import Console

    from elfctl.cli.cost.dashboard import render

    d = cost_views.dashboard(store, days=7, now=NOW)
    console = Console(record=True, width=160, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(render(d))
    text = console.export_text()
    for t in d.teams:
        assert cost_views.usd(t.month_nanousd) in text and t.team in text
    for m in d.models:
        assert cost_views.usd(m.cost_nanousd) in text
    assert cost_views.usd(d.today_totals.cost_nanousd) in text
    assert "Open breakers: llm:gpt-4o (open" in text
    assert "Likely to hit a budget today: research" in text
