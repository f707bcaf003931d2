"""`cost report` and `cost check`: spend read from the rollup (`daily_cost_summary`), never raw usage
(except `--by request`, the row export that `cost import` reads back)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from elfctl.domain import budget as bmod
from elfctl.domain.budget import BudgetExceeded, fmt_usd
from elfctl.domain.usage import COUNTERS, SUM_COUNTERS, UsageCounts
from elfctl.errors import InputError
from elfctl.ports import Store, runs_functions
from elfctl.services.cost import budgets

BY = ("team", "model", "day", "revision", "agent", "request")
# Groupings the rollup does not hold: summed from api_usage itself, per team (a revision number or an
# agent name means something only within its team). Give --team/--since to keep the scan short.
_RAW_BY = {"revision": "revision", "agent": "agent"}
_RAW_SUMS = ("COUNT(*) AS calls, SUM(CASE WHEN outcome <> 'ok' THEN 1 ELSE 0 END) AS errors, "
             "SUM(CASE WHEN fallback_reason IS NOT NULL AND fallback_reason <> '' THEN 1 ELSE 0 END) AS fallbacks, "
             "SUM(CASE WHEN priced = 0 THEN 1 ELSE 0 END) AS unpriced, SUM(prompt_tokens) AS prompt_tokens, "
             "SUM(completion_tokens) AS completion_tokens, SUM(cached_tokens) AS cached_tokens, "
             "SUM(cost_nanousd) AS cost_nanousd")


def _raw_key(by: str, team: str, value) -> str:
    if value is None:
        return f"{team} (no {by})"
    return f"{team} r{value}" if by == "revision" else f"{team} {value}"


def _day(value: str | None, flag: str) -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value[:10]).isoformat()
    except ValueError:
        raise InputError(f"{flag} {value!r} is not a date", hint=f"use {flag} YYYY-MM-DD") from None


@dataclass
class ReportRow(UsageCounts):
    key: str = ""

    @property
    def cost_usd(self) -> str:
        return f"{self.cost_nanousd / 1e9:.9f}"

    def to_data(self) -> dict:
        return {"key": self.key, **{c: getattr(self, c) for c in COUNTERS}, "cost_usd": self.cost_usd}


@dataclass
class Report:
    by: str
    since: str | None
    until: str | None
    team: str | None
    rows: list = field(default_factory=list)
    total: ReportRow = field(default_factory=lambda: ReportRow(key="total"))
    alerts: list[str] = field(default_factory=list)


def report(
    store: Store,
    team: str | None = None,
    since: str | None = None,
    until: str | None = None,
    by: str = "team",
) -> Report:
    if by not in BY:
        raise InputError(f"--by {by!r} is not a grouping", hint=f"use one of {', '.join(BY)}")
    since, until = _day(since, "--since"), _day(until, "--until")
    where, params = [], []
    for cond, value in (("team = ?", team), ("day >= ?", since), ("day <= ?", until)):
        if value:
            where.append(cond)
            params.append(value)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    rep = Report(by, since, until, team)
    if by == "request":
        from elfctl.domain.usage import COLUMNS

        if runs_functions(store):
            rep.rows = list(usage_rows(store, team, since, until))
        else:
            rep.rows = store.query(f"SELECT {', '.join(COLUMNS)} FROM api_usage{clause} ORDER BY ts, id", params)
        return rep
    if runs_functions(store):  # the same grouped read, in the database (elfctl_report, migration 0120)
        grouped = store.call("elfctl_report", {"p_by": by, "p_team": team or None, "p_since": since or None,
                                               "p_until": until or None})
    elif by in _RAW_BY:
        col = _RAW_BY[by]
        grouped = store.query(f"SELECT team, {col} AS key, {_RAW_SUMS} FROM api_usage{clause} GROUP BY team, "
                              f"{col} ORDER BY team, {col} IS NULL, {col}", params)
    else:
        grouped = store.query(f"SELECT {by} AS key, {SUM_COUNTERS} FROM daily_cost_summary{clause} GROUP BY {by} "
                              f"ORDER BY {by}", params)
    for r in grouped:
        row = ReportRow.of(r, key=_raw_key(by, r["team"], r["key"]) if by in _RAW_BY else str(r["key"]))
        rep.rows.append(row)
        rep.total.add(row)
    if rep.total.unpriced:
        rep.alerts.append(
            f"{rep.total.unpriced} call(s) used a model with no price and are counted as $0: "
            "add the model to the price overrides file, then `elfctl cost reprice --since DAY`"
        )
    return rep


EXPORT_PAGE = 1000  # rows per call of elfctl_usage_rows: Supabase's default max-rows, the function's cap


def usage_rows(store, team: str | None, since: str | None, until: str | None, page: int = EXPORT_PAGE):
    """The export's rows in the ledger's order (ts, id), a page per call of elfctl_usage_rows (0140),
    each starting after the last row of the one before: rows sharing a timestamp are neither repeated
    nor dropped at a boundary. The function says whether more follow, so a page cut short by a
    server's row cap can never end the export early."""
    from elfctl.domain.usage import COLUMNS

    after: tuple = (None, None)
    while True:
        got = store.call("elfctl_usage_rows", {"p_team": team or None, "p_since": since, "p_until": until,
                                               "p_after_ts": after[0], "p_after_id": after[1], "p_limit": page})
        rows = got["rows"]
        for r in rows:
            yield {c: r[c] for c in COLUMNS}  # the columns and order of the SQL export
        if not got["more"] or not rows:
            return
        after = (rows[-1]["ts"], rows[-1]["id"])


@dataclass
class CheckResult:
    team: str
    status: str  # ok | soft | over
    message: str
    windows: list[dict]


def check(
    store: Store, team: str, spec_budget=None, max_usd: str | None = None, now: dt.datetime | None = None
) -> CheckResult:
    """ok (exit 0), soft (exit 0, its own message), over (BudgetExceeded, exit 1)."""
    from elfctl.domain.pricing import usd_to_nano

    now = now or budgets.now_utc()
    b = budgets.get(store, team, spec_budget)
    if max_usd is not None:
        try:
            cap = usd_to_nano(max_usd)
        except Exception:  # noqa: BLE001
            raise InputError(f"--max-usd {max_usd!r} is not an amount", hint="e.g. --max-usd 5") from None
        base = b or bmod.Budget(team)
        b = bmod.Budget(
            team,
            base.daily_nanousd,
            cap if base.monthly_nanousd is None else min(cap, base.monthly_nanousd),
            base.soft_ratio,
            base.soft_action,
            base.hard_action,
            base.timezone,
        )
    if b is None or not b.limited:
        raise InputError(
            f"team {team} has no budget",
            hint=f"set one: elfctl cost budget set {team} --daily USD, or pass --max-usd N",
        )
    if runs_functions(store):  # one call is one transaction (and the only way over REST)
        budgets.expire_in(store, now, team)
    else:
        with store.transaction() as tx:
            budgets.expire_in(tx, now, team)
    states = budgets.states(store, b, now)
    windows = [
        {
            "window": s.window,
            "limit_nanousd": s.limit,
            "spent_nanousd": s.spent,
            "reserved_nanousd": s.reserved,
            "resets_at": s.resets_at.isoformat(),
        }
        for s in states
    ]
    lvl = bmod.level(b, states)
    worst = max((s for s in states if s.limit is not None), key=lambda s: s.ratio())
    what = f"{bmod.WINDOW_ADJ[worst.window]} {fmt_usd(worst.used)} of {fmt_usd(worst.limit)}"
    if lvl == "hard":
        raise BudgetExceeded(
            f"team {team} is over budget: {what} (resets {worst.resets_at:%Y-%m-%d %H:%M} UTC)",
            hint=f"raise it with `elfctl cost budget set {team}` or wait for the reset",
        )
    if lvl == "soft":
        return CheckResult(
            team, "soft", f"team {team} is past its soft limit ({b.soft_ratio:.0%}): {what}", windows
        )
    return CheckResult(team, "ok", f"team {team} is under budget: {what}", windows)
