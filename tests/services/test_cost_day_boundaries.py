"""Budgets, dashboard and forecast at the edges of a day, a month and a year, with the clock pinned
(the suite runs at any hour: these are the hours that used to be left to chance). SQLite and Postgres."""

import datetime as dt

import pytest
from tests import usage_gen as g

from elfctl.domain.budget import Budget
from elfctl.domain.clock import iso
from elfctl.domain.usage import UsageRow
from elfctl.services.cost import budgets, ledger
from elfctl.services.cost import predict as cost_predict
from elfctl.services.cost import views as cost_views

UTC = dt.UTC
LAST_MS_OF_2026 = dt.datetime(2026, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
NEW_YEAR = dt.datetime(2027, 1, 1, tzinfo=UTC)


@pytest.fixture
def migrated(store_url, open_store):
    from elfctl.bootstrap import migrations_dir
    from elfctl.config import load
    from elfctl.services.platform.migrate import migrate

    s = open_store(store_url)
    migrate(s, migrations_dir(load()))
    return s


def _spend(store, rid: str, at: dt.datetime, nano: int, reservation_id: str | None = None) -> None:
    ledger.record(store, [UsageRow(request_id=rid, ts=iso(at), team="alpha", requested_model="gpt-4o",
                                   model="gpt-4o", cost_nanousd=nano, reservation_id=reservation_id)])


def _windows(store, b, now) -> dict:
    return {s.window: (s.start, s.spent, s.reserved, s.resets_at) for s in budgets.states(store, b, now)}


def test_the_last_millisecond_of_a_year_is_spent_in_december_and_new_year_starts_empty(migrated):
    store = migrated
    b = budgets.set_budget(store, Budget("alpha", daily_nanousd=1000, monthly_nanousd=5000), now=LAST_MS_OF_2026)
    res = budgets.reserve(store, b, 600, ttl_s=60, now=LAST_MS_OF_2026)  # a call started at 23:59:59.999
    assert {s.window: s.start for s in res.states} == {"day": "2026-12-31", "month": "2026-12-01"}
    _spend(store, "late", LAST_MS_OF_2026, 600, reservation_id=res.id)
    assert _windows(store, b, LAST_MS_OF_2026) == {"day": ("2026-12-31", 600, 0, NEW_YEAR),
                                                   "month": ("2026-12-01", 600, 0, NEW_YEAR)}
    # one millisecond later both windows are new and empty: the whole daily budget is there again
    assert _windows(store, b, NEW_YEAR) == {"day": ("2027-01-01", 0, 0, dt.datetime(2027, 1, 2, tzinfo=UTC)),
                                            "month": ("2027-01-01", 0, 0, dt.datetime(2027, 2, 1, tzinfo=UTC))}
    fresh = budgets.reserve(store, b, 1000, ttl_s=60, now=NEW_YEAR)  # not refused: 0 + 1000 <= 1000
    assert [(s.window, s.start, s.spent, s.reserved) for s in fresh.states] == [
        ("day", "2027-01-01", 0, 1000), ("month", "2027-01-01", 0, 1000)]
    budgets.release(store, fresh.id)
    with pytest.raises(budgets.Refused):  # but December's day is full: 600 + 600 > 1000
        budgets.reserve(store, b, 600, ttl_s=60, now=LAST_MS_OF_2026)
    _spend(store, "first", NEW_YEAR, 7)
    d = cost_views.dashboard(store, days=2, now=NEW_YEAR)
    [alpha] = d.teams
    assert (d.today, d.month_start, alpha.today_nanousd, alpha.month_nanousd) == ("2027-01-01", "2027-01-01", 7, 7)
    assert [(x.day, x.cost_nanousd) for x in d.daily] == [("2026-12-31", 600), ("2027-01-01", 7)]


@pytest.mark.parametrize("now", [
    dt.datetime(2027, 3, 1, tzinfo=UTC),  # midnight on the 1st: nothing of the month spent, none of the day gone
    dt.datetime(2028, 2, 29, 23, 59, 59, 999000, tzinfo=UTC),  # the last instant of a leap February
], ids=["first-of-month-midnight", "end-of-leap-february"])
def test_dashboard_and_forecast_at_the_edges_of_a_month(store_url, open_store, now):
    store = open_store(store_url)
    plan = g.populate(store, days=70, rows=4_000, now=now)
    today = now.date()
    first = now.day == 1
    d = cost_views.dashboard(store, days=7, now=now)
    assert (d.today, d.month_start) == (today.isoformat(), today.replace(day=1).isoformat())
    month = {t.name: 0 for t in plan.teams}
    for day, team, *_, cost in plan.summary_rows():
        if day >= d.month_start:
            month[team] += cost
    assert {t.team: t.month_nanousd for t in d.teams} == month
    assert (sum(month.values()) == 0) == first
    for t in d.teams:
        assert t.projected_today_nanousd >= t.today_nanousd >= 0
    pred = cost_predict.predict(store, horizon="month", now=now)
    assert (pred.horizon_start, pred.horizon_end) == (today.isoformat(), ("2027-03-31" if first else "2028-02-29"))
    for t in pred.teams:
        assert t.horizon_days == (31 if first else 1) == len(t.daily)
        assert t.month.spent_nanousd == month[t.team]
        assert t.month.spent_nanousd <= t.month.p10_nanousd <= t.month.p50_nanousd <= t.month.p90_nanousd
        if not first:  # the month is over but for a millisecond: the forecast is what was spent
            assert t.month.p90_nanousd - t.month.spent_nanousd <= max(1, t.month.spent_nanousd) * 1e-6
