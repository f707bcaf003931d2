"""`cost predict` over generated history on SQLite and Postgres."""

import datetime as dt

import pytest
from tests import usage_gen as g

from elfctl.errors import InputError
from elfctl.services.cost import predict as cost_predict

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(store_url, open_store):
    s = open_store(store_url)
    g.populate(s, days=84, rows=15_000, now=NOW)
    return s


def test_forecast_per_team_within_budget_windows(store):
    pred = cost_predict.predict(store, horizon="month", now=NOW)
    assert (pred.horizon_start, pred.horizon_end) == ("2026-03-10", "2026-03-31")
    by = {t.team: t for t in pred.teams}
    assert set(by) == {"marketing", "support", "research", "sales", "ops", "legal"}
    for t in pred.teams:
        assert t.horizon_days == 22 and len(t.daily) == 22
        assert t.horizon_p10_nanousd <= t.horizon_p50_nanousd <= t.horizon_p90_nanousd
        assert t.month.p10_nanousd <= t.month.p50_nanousd <= t.month.p90_nanousd
        assert t.month.p10_nanousd >= t.month.spent_nanousd  # spend so far is already in
        assert t.model in t.candidates and t.candidates[t.model] == min(t.candidates.values())
        assert t.coverage is not None and t.backtest_mae_nanousd > 0
    # research's budget is far below its spend: it runs out early this month; sales' is far above.
    assert by["research"].month.exhausts["p50"] is not None
    assert by["research"].month.exhausts["p50"] <= "2026-03-12"
    assert by["sales"].month.exhausts == {"p10": None, "p50": None, "p90": None}
    assert "will not" in by["sales"].month.verdict
    assert by["ops"].month.budget_nanousd is None and by["ops"].month.exhausts == {}


def test_month_forecast_is_close_to_what_the_generator_spends(store):
    """The generator's own (noise-free) level for the rest of the month lies inside P10..P90."""
    pred = cost_predict.predict(store, team="support", horizon="7d", now=NOW)
    [t] = pred.teams
    assert t.horizon_days == 7
    rest = g.spend_series(g.TeamProfile("support", 25.0, weekend=0.6, noise=0.0), dt.date(2026, 3, 10), 7)
    # scale the profile's USD to the plan's (rows) scale using the recorded history
    hist = store.query(
        "SELECT SUM(cost_nanousd) AS c FROM daily_cost_summary WHERE team = 'support' "
        "AND day >= '2026-03-02' AND day <= '2026-03-08'"
    )[0]["c"]
    week_level = sum(
        g.spend_series(g.TeamProfile("support", 25.0, weekend=0.6, noise=0.0), dt.date(2026, 3, 2), 7)
    )
    expected = sum(rest) * int(hist) / week_level
    assert t.horizon_p10_nanousd * 0.9 <= expected <= t.horizon_p90_nanousd * 1.1


def test_short_history_and_bad_input(store_url, open_store):
    s = open_store(store_url)
    g.populate(s, days=10, rows=2_000, now=NOW, teams=g.default_teams(2))
    pred = cost_predict.predict(s, horizon="7d", now=NOW)
    for t in pred.teams:
        assert t.model == "moving_average" and "too little history (9 days" in t.reason
        assert t.candidates == {}
    with pytest.raises(InputError, match="--horizon"):
        cost_predict.predict(s, horizon="2w", now=NOW)
    with pytest.raises(InputError, match="'nobody'"):
        cost_predict.predict(s, team="nobody", now=NOW)
