"""`cost predict`: each team's spend forecast as P10/P50/P90, within its budgets' own windows.

Reads the daily rollup only (`daily_cost_summary`, at most HISTORY_DAYS back) and the budgets. The
history is each team's completed days; today's spend so far is added to the forecast of the rest of
today (its weight is the share of the UTC day still to come).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, field

from elfctl.domain import forecast as fm
from elfctl.errors import InputError
from elfctl.ports import runs_functions
from elfctl.services.cost.views import require_schema

HISTORY_DAYS = 182  # half a year of daily totals is plenty for weekly models and bounds the read
HORIZONS = ("7d", "30d", "month")


@dataclass
class Window:
    """One budget window (today or this month): spend so far, forecast total, budget."""

    kind: str  # day | month
    start: str
    end: str
    spent_nanousd: int
    p10_nanousd: int
    p50_nanousd: int
    p90_nanousd: int
    budget_nanousd: int | None
    # Exhaustion of the budget within the window: 'p10' early date .. 'p90' late date; None = will not.
    exhausts: dict[str, str | None] = field(default_factory=dict)
    verdict: str = ""


@dataclass
class TeamForecast:
    team: str
    model: str
    reason: str
    history_days: int
    backtest_mae_nanousd: int | None
    backtest_wape: float | None
    coverage: float | None  # share of backtest days inside P10..P90 (out of sample)
    candidates: dict[str, int]  # model -> backtest MAE (nano-USD per day)
    horizon_days: int
    horizon_p10_nanousd: int
    horizon_p50_nanousd: int
    horizon_p90_nanousd: int
    daily: list[dict]  # [{"day", "p50_nanousd"}] for the horizon
    history: list[dict]  # [{"day", "cost_nanousd"}], the last 28 days (for charts)
    today: Window
    month: Window


@dataclass
class Prediction:
    generated_at: str
    horizon: str
    horizon_start: str
    horizon_end: str
    teams: list[TeamForecast]


def horizon_days(horizon: str, today: dt.date) -> int:
    if horizon == "7d":
        return 7
    if horizon == "30d":
        return 30
    if horizon == "month":
        return calendar.monthrange(today.year, today.month)[1] - today.day + 1
    raise InputError(
        f"--horizon {horizon!r} is not one of {', '.join(HORIZONS)}", hint="use --horizon 7d, 30d or month"
    )


def predict(
    store, team: str | None = None, horizon: str = "7d", now: dt.datetime | None = None
) -> Prediction:
    require_schema(store)
    now = now or dt.datetime.now(dt.UTC)
    today = now.date()
    n_h = horizon_days(horizon, today)
    rows, budget_rows = _read(store, today - dt.timedelta(days=HISTORY_DAYS), today, team)
    budgets = {b["team"]: b for b in budget_rows}
    per_team: dict[str, dict[str, int]] = {}
    for r in rows:
        per_team.setdefault(r["team"], {})[r["day"]] = int(r["cost"])
    if team and team not in per_team and team not in budgets:
        raise InputError(
            f"team {team!r} has no recorded usage and no budget",
            hint="check the name with `elfctl cost dashboard`",
        )
    elapsed = (now - dt.datetime.combine(today, dt.time(), now.tzinfo)).total_seconds() / 86400
    out = [
        _team(name, per_team.get(name, {}), budgets.get(name, {}), today, 1 - elapsed, n_h)
        for name in sorted(set(per_team) | set(budgets))
    ]
    end = today + dt.timedelta(days=n_h - 1)
    return Prediction(now.isoformat(timespec="seconds"), horizon, today.isoformat(), end.isoformat(), out)


def _read(store, lo: dt.date, hi: dt.date, team: str | None) -> tuple[list[dict], list[dict]]:
    """Spend per (day, team) from the rollup, and the budgets: one call of elfctl_predict where the
    store runs database functions (migration 0120), else the same two reads as SQL."""
    if runs_functions(store):
        got = store.call("elfctl_predict", {"p_lo": lo.isoformat(), "p_hi": hi.isoformat(), "p_team": team or None})
        return got["by_day_team"], got["budgets"]
    sql = (
        "SELECT day, team, SUM(cost_nanousd) AS cost FROM daily_cost_summary WHERE day >= ? AND day <= ?"
        + (" AND team = ?" if team else "")
        + " GROUP BY day, team"
    )
    rows = store.query(sql, [lo.isoformat(), hi.isoformat()] + ([team] if team else []))
    budgets = store.query(
        "SELECT team, daily_nanousd, monthly_nanousd FROM budgets" + (" WHERE team = ?" if team else ""),
        [team] if team else [],
    )
    return rows, budgets


def _team(
    name: str, by_day: dict[str, int], budget: dict, today: dt.date, rest: float, n_h: int
) -> TeamForecast:
    past = sorted(d for d in by_day if d < today.isoformat())
    start = dt.date.fromisoformat(past[0]) if past else today
    y = [
        float(by_day.get((start + dt.timedelta(days=i)).isoformat(), 0)) for i in range((today - start).days)
    ]
    month_end = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    days_left = (month_end - today).days + 1
    fc = fm.forecast_series(y, start, max(n_h, days_left))
    spent_today = by_day.get(today.isoformat(), 0)
    month_start = today.replace(day=1)
    spent_month = sum(v for d, v in by_day.items() if month_start.isoformat() <= d <= today.isoformat())

    def window(kind, first, last, spent, n, budget_nano):
        return _window(fc, rest, kind, first, last, spent, n, budget_nano)

    h10, h50, h90 = (int(round(spent_today + v)) for v in fc.total(n_h, first_weight=rest))
    return TeamForecast(
        team=name,
        model=fc.model,
        reason=fc.reason,
        history_days=fc.history_days,
        backtest_mae_nanousd=None if fc.backtest_mae is None else int(round(fc.backtest_mae)),
        backtest_wape=fc.backtest_wape,
        coverage=fc.coverage,
        candidates={k: int(round(v)) for k, v in fc.candidates.items()},
        horizon_days=n_h,
        horizon_p10_nanousd=h10,
        horizon_p50_nanousd=h50,
        horizon_p90_nanousd=h90,
        daily=[
            {
                "day": (today + dt.timedelta(days=i)).isoformat(),
                "p50_nanousd": int(
                    round(fc.daily[i] * (rest if i == 0 else 1) + (spent_today if i == 0 else 0))
                ),
            }
            for i in range(n_h)
        ],
        history=[
            {
                "day": (today - dt.timedelta(days=i)).isoformat(),
                "cost_nanousd": by_day.get((today - dt.timedelta(days=i)).isoformat(), 0),
            }
            for i in range(28, 0, -1)
        ],
        today=window("day", today, today, spent_today, 1, _int(budget.get("daily_nanousd"))),
        month=window(
            "month", month_start, month_end, spent_month, days_left, _int(budget.get("monthly_nanousd"))
        ),
    )


def _window(fc, rest: float, kind: str, first: dt.date, last: dt.date, spent: int, n: int,
            budget_nano: int | None) -> Window:
    """Spent so far plus the forecast's quantiles over the n days left, and when the budget runs out."""
    q = fc.total(n, first_weight=rest)
    w = Window(kind, first.isoformat(), last.isoformat(), spent, *(int(round(spent + v)) for v in q), budget_nano)
    if budget_nano:
        dates = fm.exhaustion_dates(fc, spent, budget_nano, n, rest)
        w.exhausts = {k: (v.isoformat() if v else None) for k, v in dates.items()}
        if w.exhausts["p50"]:
            w.verdict = f"runs out {w.exhausts['p50']} (P50)"
        else:
            w.verdict = "will not run out (P50)" + (
                f"; 10% chance by {w.exhausts['p10']}" if w.exhausts["p10"] else ""
            )
    return w


def _int(v) -> int | None:
    return None if v is None else int(v)
