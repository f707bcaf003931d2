"""Budgets: limits per team and window, the windows themselves, and what to do at each limit.

Pure rules: no store, no clock of its own (callers pass `now`). Amounts are integer nano-dollars.
Windows are calendar days and months in the budget's time zone (UTC by default); a window is named
by its start, so a new day is a new counter row and nothing ever has to be reset.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from elfctl.errors import InputError, OperationFailed

ACTIONS = ("warn", "downgrade", "block")
WINDOWS = ("day", "month")
WINDOW_ADJ = {"day": "daily", "month": "monthly"}


@dataclass(frozen=True)
class Budget:
    team: str
    daily_nanousd: int | None = None
    monthly_nanousd: int | None = None
    soft_ratio: float = 0.8
    soft_action: str = "warn"
    hard_action: str = "block"
    timezone: str = "UTC"
    source: str = "store"  # "store" (cost budget set) or "team.yaml"

    def limit(self, window: str) -> int | None:
        return self.daily_nanousd if window == "day" else self.monthly_nanousd

    @property
    def limited(self) -> bool:
        return self.daily_nanousd is not None or self.monthly_nanousd is not None


def validate(b: Budget) -> Budget:
    for name, value in (("--daily", b.daily_nanousd), ("--monthly", b.monthly_nanousd)):
        if value is not None and value < 0:
            raise InputError(
                f"budget for {b.team}: {name} must not be negative", hint=f"give {name} in USD, e.g. 5"
            )
    if not 0 < b.soft_ratio <= 1:
        raise InputError(
            f"budget for {b.team}: --soft {b.soft_ratio} must be in (0, 1]", hint="e.g. --soft 0.8"
        )
    for name, value in (("--soft-action", b.soft_action), ("--action", b.hard_action)):
        if value not in ACTIONS:
            raise InputError(
                f"budget for {b.team}: {name} {value!r} is not an action",
                hint=f"use one of {', '.join(ACTIONS)}",
            )
    zone(b.timezone)
    return b


def zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"time zone {name!r} is unknown", hint="use an IANA name such as UTC or Europe/Paris"
        ) from None


def window_start(window: str, now: dt.datetime, tz: str = "UTC") -> str:
    """The start of the day/month holding `now`, in `tz`, as 'YYYY-MM-DD' (the counter's key)."""
    local = now.astimezone(zone(tz))
    d = local.date() if window == "day" else local.date().replace(day=1)
    return d.isoformat()


def resets_at(window: str, now: dt.datetime, tz: str = "UTC") -> dt.datetime:
    """When the window holding `now` ends, as an aware UTC datetime."""
    z = zone(tz)
    local = now.astimezone(z)
    if window == "day":
        nxt = local.date() + dt.timedelta(days=1)
    else:
        nxt = (local.date().replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return dt.datetime.combine(nxt, dt.time(), tzinfo=z).astimezone(dt.UTC)


@dataclass(frozen=True)
class WindowState:
    window: str
    start: str
    limit: int | None
    spent: int
    reserved: int
    resets_at: dt.datetime

    @property
    def used(self) -> int:
        return self.spent + self.reserved

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    def ratio(self) -> float:
        if not self.limit:
            return 0.0 if self.limit is None else (1.0 if self.used else 0.0)
        return self.used / self.limit


def level(b: Budget, states: list[WindowState]) -> str:
    """'ok', 'soft' (past the soft limit) or 'hard' (at or past the limit) over the windows."""
    worst = "ok"
    for s in states:
        if s.limit is None:
            continue
        if s.used >= s.limit:
            return "hard"
        if s.used >= b.soft_ratio * s.limit:
            worst = "soft"
    return worst


class BudgetExceeded(OperationFailed):
    """A call refused by a team's budget (exit 1). Says the budget, the spend and when it resets."""

    code = "budget_exceeded"
    resets_at: dt.datetime | None = None  # when the window that refused resets (the gateway's Retry-After)


def fmt_usd(nano: int | None) -> str:
    if nano is None:
        return "unlimited"
    usd = nano / 1e9
    return f"${usd:,.2f}" if abs(usd) >= 1 else f"${usd:.6f}".rstrip("0").rstrip(".") if usd else "$0"


def exceeded_error(team: str, s: WindowState, model: str, need: int) -> BudgetExceeded:
    err = BudgetExceeded(
        f"team {team}: {WINDOW_ADJ[s.window]} budget {fmt_usd(s.limit)} would be exceeded "
        f"by a call to {model} "
        f"(spent {fmt_usd(s.spent)}, reserved {fmt_usd(s.reserved)}, this call up to {fmt_usd(need)}); "
        f"resets at {s.resets_at.strftime('%Y-%m-%d %H:%M UTC')}",
        hint=f"raise it with `elfctl cost budget set {team} --{WINDOW_ADJ[s.window]} USD`, "
        f"lower max_tokens, or wait for the reset",
    )
    err.resets_at = s.resets_at
    return err
