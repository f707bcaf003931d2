"""`cost dashboard --watch`: redraw within a poll of a new call, without rebuilding the dashboard each poll.

A full build reads the whole rollup window (about 100 ms of database work on a big ledger), so it runs
at the user's interval. Between builds a cheap change marker is polled every POLL_S: today's rollup rows
(one indexed range read on daily_cost_summary's primary key, a row per team and model of today), the
same read through `Rows.select` on SQLite, Postgres and Supabase's REST API. Today's call count and cost
move with every recorded call whatever order concurrent writers commit in (a max(id) of api_usage
would not: an identity taken earlier can commit later). What the marker does not see (budgets,
breakers, imports into past days) waits for the interval's full build, as before."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Hashable

POLL_S = 0.25


def marker(store, team: str | None = None, now: dt.datetime | None = None) -> Hashable:
    """(UTC day, calls, cost) of today's rollup, for one team or all."""
    day = (now or dt.datetime.now(dt.UTC)).date().isoformat()
    where = {"day": day, **({"team": team} if team else {})}
    rows = store.select("daily_cost_summary", where, columns="calls, cost_nanousd")
    return day, sum(int(r["calls"]) for r in rows), sum(int(r["cost_nanousd"]) for r in rows)


def watch(build: Callable[[], object], draw: Callable[[object], None], changed: Callable[[], Hashable],
          interval: float, poll: float = POLL_S, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep, stop: Callable[[], bool] = lambda: False) -> None:
    """Draw build() now, then again whenever changed() differs from its last value (read every `poll`
    seconds) and at least every `interval` seconds. The marker is read before the build it goes with, so
    a call landing between the two is drawn by this build and again (harmlessly) on the next poll."""
    seen = changed()
    draw(build())
    due = clock() + interval
    while not stop():
        sleep(max(0.0, min(poll, due - clock())))
        now_seen = changed()
        if now_seen != seen or clock() >= due:
            seen = now_seen
            draw(build())
            due = clock() + interval
