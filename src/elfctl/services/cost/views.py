"""The cost dashboard's figures, read from the rollup tables only.

Every number comes from `daily_cost_summary` (one row per day/team/model, kept current by the
ledger), `budgets` and `breaker_state`: a refresh reads a few thousand rollup rows whatever the
number of calls, and never scans `api_usage`. Days are the summary's days (UTC); a budget kept in
another time zone is compared on UTC days here (marked `approx_window`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from elfctl.domain.usage import SUM_COUNTERS, UsageCounts
from elfctl.errors import InputError, StoreNotMigrated
from elfctl.ports import runs_functions

HISTORY_DAYS = 28  # same-weekday history used to project the rest of today


@dataclass
class TeamView:
    team: str
    today_nanousd: int
    month_nanousd: int
    daily_budget_nanousd: int | None
    monthly_budget_nanousd: int | None
    soft_ratio: float
    today_ratio: float | None  # spend / budget
    month_ratio: float | None
    today_level: str  # ok | soft | hard | none (no budget)
    month_level: str
    projected_today_nanousd: int  # today so far + the rest of today as on the same weekdays recently
    hit_today: float | None  # projected / daily budget (>= 1: expected to hit it today)
    approx_window: bool = False


@dataclass
class ModelView(UsageCounts):
    model: str = ""
    error_rate: float = 0.0
    fallback_rate: float = 0.0


@dataclass
class DayView:
    day: str
    cost_nanousd: int
    calls: int
    errors: int
    fallbacks: int


@dataclass
class Totals(UsageCounts):
    error_rate: float = 0.0
    fallback_rate: float = 0.0


@dataclass
class Breaker:
    name: str
    state: str
    opened_at: str | None


@dataclass
class Dashboard:
    generated_at: str
    today: str
    month_start: str
    since: str  # the period of the daily chart, by-model figures and totals
    until: str
    team: str | None
    today_totals: Totals
    period_totals: Totals
    teams: list[TeamView]
    models: list[ModelView]
    daily: list[DayView]
    at_risk: list[str]  # teams most likely to hit a budget today, most likely first
    breakers: list[Breaker]  # not closed
    notes: list[str] = field(default_factory=list)


def _day(value: str, flag: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{flag} {value!r} is not a date", hint="use YYYY-MM-DD, e.g. 2026-01-31") from None


def period(now: dt.datetime, days: int, since: str | None, until: str | None) -> tuple[dt.date, dt.date]:
    if days < 1 or days > 366:
        raise InputError(f"--days {days} is out of range", hint="use 1 to 366 days")
    end = _day(until, "--until") if until else now.date()
    start = _day(since, "--since") if since else end - dt.timedelta(days=days - 1)
    if start > end:
        raise InputError(f"--since {start} is after --until {end}", hint="swap them")
    return start, end


def dashboard(
    store,
    team: str | None = None,
    days: int = 14,
    now: dt.datetime | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Dashboard:
    now = now or dt.datetime.now(dt.UTC)
    today = now.date()
    start, end = period(now, days, since, until)
    require_schema(store)
    month_start = today.replace(day=1)
    lo = min(start, month_start, today - dt.timedelta(days=HISTORY_DAYS))
    hi = max(end, today)
    rows, by_model, budget_rows, breakers = _read(store, team, (lo, hi), (start, end))
    teams = _team_views(rows, budget_rows, now)
    models = sorted((_model_view(r) for r in by_model), key=lambda m: (-m.cost_nanousd, m.model))
    at_risk = [t.team for t in sorted(teams, key=_risk, reverse=True) if _risk(t) >= t.soft_ratio]
    notes = []
    if any(t.approx_window for t in teams):
        notes.append("budgets in a time zone other than UTC are compared on UTC days")
    return Dashboard(
        generated_at=now.isoformat(timespec="seconds"),
        today=today.isoformat(),
        month_start=month_start.isoformat(),
        since=start.isoformat(),
        until=end.isoformat(),
        team=team,
        today_totals=_totals([r for r in rows if r["day"] == today.isoformat()]),
        period_totals=_totals([r for r in rows if start.isoformat() <= r["day"] <= end.isoformat()]),
        teams=teams,
        models=models,
        daily=_daily(rows, start, end),
        at_risk=at_risk,
        breakers=[Breaker(b["name"], b["state"], b["opened_at"]) for b in breakers],
        notes=notes,
    )


def _read(store, team: str | None, window: tuple[dt.date, dt.date], period_: tuple[dt.date, dt.date]):
    """Two grouped reads of the rollup, per (day, team) over `window` and per model over the
    period, then the budgets and the breakers that are not closed. Where the store runs database
    functions it is one call of elfctl_dashboard (migration 0120): the same reads, in the database."""
    if runs_functions(store):
        got = store.call("elfctl_dashboard", {"p_lo": window[0].isoformat(), "p_hi": window[1].isoformat(),
                                              "p_start": period_[0].isoformat(), "p_end": period_[1].isoformat(),
                                              "p_team": team or None})
        return _counts(got["by_day_team"]), got["by_model"], got["budgets"], got["breakers"]
    where, params = "day >= ? AND day <= ?", [window[0].isoformat(), window[1].isoformat()]
    pwhere, pparams = "day >= ? AND day <= ?", [period_[0].isoformat(), period_[1].isoformat()]
    if team:
        where, pwhere = where + " AND team = ?", pwhere + " AND team = ?"
        params.append(team)
        pparams.append(team)
    by_day_team = store.query(
        f"SELECT day, team, {SUM_COUNTERS} FROM daily_cost_summary WHERE {where} GROUP BY day, team", params
    )
    by_model = store.query(
        f"SELECT model, {SUM_COUNTERS} FROM daily_cost_summary WHERE {pwhere} GROUP BY model", pparams
    )
    budget_rows = store.query(
        "SELECT team, daily_nanousd, monthly_nanousd, soft_ratio, timezone FROM budgets"
        + (" WHERE team = ?" if team else ""),
        [team] if team else [],
    )
    breakers = store.query(
        "SELECT name, state, opened_at FROM breaker_state WHERE state <> 'closed' ORDER BY name"
    )
    return _counts(by_day_team), by_model, budget_rows, breakers


def _counts(by_day_team: list[dict]) -> list[dict]:
    return [{k: (int(v) if k not in ("day", "team") and v is not None else v) for k, v in r.items()}
            for r in by_day_team]


def _daily(rows: list[dict], start: dt.date, end: dt.date) -> list[DayView]:
    """Spend per day of the period, days without any use included."""
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    daily = {d.isoformat(): DayView(d.isoformat(), 0, 0, 0, 0) for d in days}
    for r in rows:
        if r["day"] in daily:
            v = daily[r["day"]]
            v.cost_nanousd += r["cost_nanousd"]
            v.calls += r["calls"]
            v.errors += r["errors"]
            v.fallbacks += r["fallbacks"]
    return list(daily.values())


def require_schema(store) -> None:
    """A store nobody migrated yet gets a clear error instead of 'no such table'. Where the store
    runs database functions the report's one call is the check (a missing elfctl function is
    store_not_migrated too), which spares a REST store a download of its schema on every refresh."""
    if runs_functions(store):
        return
    missing = {"daily_cost_summary", "budgets", "breaker_state"} - set(store.tables())
    if missing:
        raise StoreNotMigrated(
            f"the store {store.display_url} has no cost tables ({', '.join(sorted(missing))})",
            hint="run `elfctl db migrate` (or `elfctl infra up`) first",
        )


def _risk(t: TeamView) -> float:
    month = t.month_ratio or 0.0
    return max(t.hit_today or 0.0, month)


def _team_views(rows: list[dict], budgets: list[dict], now: dt.datetime) -> list[TeamView]:
    today = now.date()
    tday, mstart = today.isoformat(), today.replace(day=1).isoformat()
    elapsed = (now - dt.datetime.combine(today, dt.time(), now.tzinfo)).total_seconds() / 86400
    per_team: dict[str, dict] = {}
    for r in rows:
        t = per_team.setdefault(r["team"], {"today": 0, "month": 0, "same_weekday": []})
        if r["day"] == tday:
            t["today"] += r["cost_nanousd"]
        if mstart <= r["day"] <= tday:
            t["month"] += r["cost_nanousd"]
        d = dt.date.fromisoformat(r["day"])
        if d < today and d.weekday() == today.weekday() and (today - d).days <= HISTORY_DAYS:
            t["same_weekday"].append(r["cost_nanousd"])
    by_budget = {b["team"]: b for b in budgets}
    out = []
    for name in sorted(set(per_team) | set(by_budget)):
        t = per_team.get(name, {"today": 0, "month": 0, "same_weekday": []})
        b = by_budget.get(name, {})
        soft = float(b.get("soft_ratio") or 0.8)
        daily_b, monthly_b = _int(b.get("daily_nanousd")), _int(b.get("monthly_nanousd"))
        typical = sum(t["same_weekday"]) / len(t["same_weekday"]) if t["same_weekday"] else t["today"]
        projected = int(t["today"] + typical * max(0.0, 1 - elapsed))
        today_ratio = t["today"] / daily_b if daily_b else None
        month_ratio = t["month"] / monthly_b if monthly_b else None
        out.append(
            TeamView(
                team=name,
                today_nanousd=t["today"],
                month_nanousd=t["month"],
                daily_budget_nanousd=daily_b,
                monthly_budget_nanousd=monthly_b,
                soft_ratio=soft,
                today_ratio=today_ratio,
                month_ratio=month_ratio,
                today_level=level(today_ratio, soft),
                month_level=level(month_ratio, soft),
                projected_today_nanousd=projected,
                hit_today=max(
                    projected / daily_b if daily_b else 0.0,
                    (t["month"] - t["today"] + projected) / monthly_b if monthly_b else 0.0,
                )
                if (daily_b or monthly_b)
                else None,
                approx_window=(b.get("timezone") or "UTC") != "UTC",
            )
        )
    return out


def level(ratio: float | None, soft: float) -> str:
    if ratio is None:
        return "none"
    return "hard" if ratio >= 1 else "soft" if ratio >= soft else "ok"


def _int(v) -> int | None:
    return None if v is None else int(v)


def _totals(rows: list[dict]) -> Totals:
    total = UsageCounts()
    for r in rows:
        total.add(UsageCounts.of(r))
    return Totals(**vars(total), **total.rates())


def _model_view(r: dict) -> ModelView:
    counts = UsageCounts.of(r)
    return ModelView(**vars(counts), model=r["model"], **counts.rates())


def usd(nano: int | float | None, places: int = 2) -> str:
    """Nano-dollars as '$1,234.56' (the one formatter every view uses, so figures match)."""
    if nano is None:
        return "-"
    return f"${nano / 1e9:,.{places}f}"
