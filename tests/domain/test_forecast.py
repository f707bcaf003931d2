"""Forecast models on generated seasonal history, judged on held-out weeks."""

import datetime as dt

import pytest
from tests import usage_gen as g

from elfctl.domain import forecast as fm

START = dt.date(2026, 1, 5)  # a Monday


def _series(team, days, seed):
    return [v * 1e9 for v in g.spend_series(team, START, days, seed)]


def _mae(actual, pred):
    return sum(abs(a - b) for a, b in zip(actual, pred, strict=True)) / len(actual)


def test_chosen_model_beats_seasonal_naive_on_held_out_weeks():
    """Seasonal data with trends and noise (no spikes: a spike in the held-out weeks is luck):
    over many teams and seeds the model each team's backtest picks beats seasonal naive."""
    teams = [t for t in g.default_teams(6) if not t.spike_prob]
    chosen_err = naive_err = wins = cases = 0
    for team in teams:
        for seed in range(1, 5):
            y = _series(team, 126, seed)
            hist, held = y[:112], y[112:]  # two held-out weeks
            fc = fm.forecast_series(hist, START, 14)
            chosen, naive = _mae(held, fc.daily), _mae(held, fm.seasonal_naive(hist, START, 14))
            chosen_err += chosen
            naive_err += naive
            wins += chosen < naive
            cases += 1
            assert fc.reason == "lowest backtest error" and fc.history_days == 112
            assert fc.candidates[fc.model] == min(fc.candidates.values())
    assert chosen_err < 0.85 * naive_err, (chosen_err, naive_err)
    assert wins >= 0.7 * cases, f"chosen model beat seasonal naive in {wins}/{cases} cases"


def test_seasonal_model_knows_weekends():
    team = g.TeamProfile("t", 100.0, weekend=0.2, noise=0.02)
    y = _series(team, 84, 1)
    daily = fm.seasonal_trend(y, START, 7)  # forecast Monday..Sunday
    weekdays, weekend = daily[:5], daily[5:]
    assert min(weekdays) > 3 * max(weekend)
    assert all(90e9 < v < 110e9 for v in weekdays)


def test_trend_is_followed():
    team = g.TeamProfile("t", 50.0, weekend=1.0, trend=0.01, noise=0.01)
    y = _series(team, 84, 1)
    fc = fm.forecast_series(y, START, 7)
    assert fc.model in ("seasonal_trend", "weekpart_trend")
    assert fc.daily[0] > y[-7] * 1.03  # still growing, not flat at last week's level


def test_intervals_cover_what_happened():
    """Out-of-sample coverage is reported, and held-out weekly totals mostly fall in P10..P90."""
    team = g.TeamProfile("t", 40.0, trend=0.003, noise=0.15)
    inside = total = 0
    for seed in range(1, 21):
        y = _series(team, 119, seed)
        hist, held = y[:112], y[112:]
        fc = fm.forecast_series(hist, START, 7)
        q10, q50, q90 = fc.total(7)
        assert q10 <= q50 <= q90
        inside += q10 <= sum(held) <= q90
        total += 1
        assert fc.coverage is not None and 0.4 <= fc.coverage <= 1.0
    assert 0.6 <= inside / total <= 1.0, f"{inside}/{total} weeks inside P10..P90"


def test_too_little_history_says_so_and_uses_the_simple_model():
    y = [10e9, 12e9, 11e9, 9e9, 10e9, 13e9, 11e9, 10e9, 12e9, 11e9]
    fc = fm.forecast_series(y, START, 7)
    assert fc.model == fm.SIMPLE_MODEL
    assert "too little history (10 days" in fc.reason
    assert fc.candidates == {} and fc.coverage is None
    q10, q50, q90 = fc.total(7)
    assert q10 < q50 < q90 and 60e9 < q50 < 95e9
    empty = fm.forecast_series([], START, 3)
    assert empty.daily == [0.0, 0.0, 0.0] and "no history" in empty.reason


def test_exhaustion_dates_are_ordered_and_will_not_when_far_below():
    team = g.TeamProfile("t", 10.0, weekend=1.0, noise=0.1)
    y = _series(team, 84, 3)
    fc = fm.forecast_series(y, START, 31)
    tight = fm.exhaustion_dates(fc, spent=0, budget=100e9, days_left=31, today_weight=1.0)
    assert tight["p10"] <= tight["p50"] <= tight["p90"]
    assert fc.first_day + dt.timedelta(days=8) <= tight["p50"] <= fc.first_day + dt.timedelta(days=11)
    assert fm.exhaustion_dates(fc, 0, 1000e9, 31, 1.0) == {"p10": None, "p50": None, "p90": None}
    assert fm.exhaustion_dates(fc, 200e9, 100e9, 31, 1.0)["p50"] == fc.first_day  # already over


@pytest.mark.parametrize("q,expected", [(0.0, 1.0), (0.5, 2.5), (1.0, 4.0)])
def test_quantile(q, expected):
    assert fm.quantile([4.0, 1.0, 3.0, 2.0], q) == expected
