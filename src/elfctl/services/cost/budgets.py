"""Budgets in the store: set/list/show, and the atomic reserve / release used around every call.

A reservation is one conditional UPDATE per window (on SQLite both windows in one statement):
    UPDATE spend_counters SET reserved = reserved + :amount
     WHERE <team, window> AND spent + reserved + :amount <= :limit
Postgres re-checks the WHERE after taking the row lock and SQLite serialises writers (BEGIN
IMMEDIATE), so concurrent callers can never together reserve past the limit: a budget is overshot
only by what calls actually cost beyond their reserved worst case. Reservations carry an expiry;
one left by a killed process is released by the next reserve (or `cost reconcile`).
On stores that run database functions (Postgres, Supabase over REST) each of these operations is
one call of its function in migration 0110 (`elfctl_reserve`, `elfctl_expire`, `elfctl_settle`),
the same statements in plpgsql; the SQL here is SQLite's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from elfctl.domain import budget as bmod
from elfctl.domain.budget import Budget, WindowState
from elfctl.domain.clock import iso
from elfctl.domain.notify import Event
from elfctl.domain.pricing import usd_to_nano
from elfctl.ids import new_id
from elfctl.ports import Store, Tx, runs_functions
from elfctl.services.cost import ledger
from elfctl.services.notify import outbox


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def from_spec(team: str, spec_budget) -> Budget | None:
    """team.yaml's llm.budget as a Budget (None when it sets no limit)."""
    if spec_budget is None or (spec_budget.daily_usd is None and spec_budget.monthly_usd is None):
        return None

    def conv(v):
        return None if v is None else usd_to_nano(v)

    return Budget(
        team,
        conv(spec_budget.daily_usd),
        conv(spec_budget.monthly_usd),
        spec_budget.soft_limit,
        spec_budget.soft_action,
        spec_budget.hard_action,
        "UTC",
        source="team.yaml",
    )


def get(store: Store, team: str, spec_budget=None) -> Budget | None:
    """The team's budget: a row set by `cost budget set` wins over team.yaml's llm.budget."""
    rows = store.select("budgets", {"team": team})  # Rows: over Supabase's REST API too
    if rows:
        r = rows[0]
        return Budget(
            team,
            r["daily_nanousd"],
            r["monthly_nanousd"],
            float(r["soft_ratio"]),
            r["soft_action"],
            r["hard_action"],
            r["timezone"],
            source="store",
        )
    return from_spec(team, spec_budget)


def set_budget(store: Store, b: Budget, now: dt.datetime | None = None) -> Budget:
    bmod.validate(b)
    now = now or now_utc()
    row = {"team": b.team, "daily_nanousd": b.daily_nanousd, "monthly_nanousd": b.monthly_nanousd,
           "soft_ratio": b.soft_ratio, "soft_action": b.soft_action, "hard_action": b.hard_action,
           "timezone": b.timezone, "updated_at": iso(now)}
    if runs_functions(store):  # elfctl_budget_set (0140): the row and its rebuilt counters in one call
        windows = [dict(zip(("kind", "start", "lo", "hi"), (kind, *window_bounds(kind, now, b.timezone)), strict=True))
                   for kind in bmod.WINDOWS]
        store.call("elfctl_budget_set", {"p_budget": row, "p_windows": windows})
        return b
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO budgets (team, daily_nanousd, monthly_nanousd, soft_ratio, soft_action, "
            "hard_action, "
            "timezone, updated_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (team) DO UPDATE SET "
            "daily_nanousd = excluded.daily_nanousd, monthly_nanousd = excluded.monthly_nanousd, "
            "soft_ratio = excluded.soft_ratio, soft_action = excluded.soft_action, "
            "hard_action = excluded.hard_action, timezone = excluded.timezone, "
            "updated_at = excluded.updated_at",
            (
                b.team,
                b.daily_nanousd,
                b.monthly_nanousd,
                b.soft_ratio,
                b.soft_action,
                b.hard_action,
                b.timezone,
                iso(now),
            ),
        )
        # The time zone decides the windows: rebuild this team's current counters from the ledger.
        for kind in bmod.WINDOWS:
            rebuild_counter(tx, b.team, kind, now, b.timezone)
    return b


def window_bounds(kind: str, now: dt.datetime, tz: str) -> tuple[str, str, str]:
    """(counter key, first ts in the window, first ts after it) as store text."""
    start = bmod.window_start(kind, now, tz)
    z = bmod.zone(tz)
    begin = dt.datetime.combine(dt.date.fromisoformat(start), dt.time(), tzinfo=z)
    return start, iso(begin), iso(bmod.resets_at(kind, now, tz))


def spent_in(tx: Tx, team: str, kind: str, now: dt.datetime, tz: str) -> int:
    _, lo, hi = window_bounds(kind, now, tz)
    row = tx.query(
        "SELECT COALESCE(SUM(cost_nanousd), 0) AS s FROM api_usage WHERE team = ? AND ts >= ? AND ts < ?",
        (team, lo, hi),
    )
    return int(row[0]["s"])


def rebuild_counter(tx: Tx, team: str, kind: str, now: dt.datetime, tz: str) -> None:
    start = bmod.window_start(kind, now, tz)
    spent = spent_in(tx, team, kind, now, tz)
    reserved = tx.query(
        f"SELECT COALESCE(SUM(amount_nanousd), 0) AS s FROM budget_reservations WHERE team = ? "
        f"AND {'day_start' if kind == 'day' else 'month_start'} = ?",
        (team, start),
    )[0]["s"]
    tx.execute(
        "INSERT INTO spend_counters (team, window_kind, window_start, spent_nanousd, reserved_nanousd) "
        "VALUES (?,?,?,?,?) ON CONFLICT (team, window_kind, window_start) DO UPDATE SET "
        "spent_nanousd = excluded.spent_nanousd, reserved_nanousd = excluded.reserved_nanousd",
        (team, kind, start, spent, int(reserved)),
    )


def states(store: Store, b: Budget, now: dt.datetime | None = None) -> list[WindowState]:
    now = now or now_utc()
    out = []
    for kind in bmod.WINDOWS:
        start = bmod.window_start(kind, now, b.timezone)
        row = store.select("spend_counters", {"team": b.team, "window_kind": kind, "window_start": start},
                           columns="spent_nanousd, reserved_nanousd")
        spent, reserved = (int(row[0]["spent_nanousd"]), int(row[0]["reserved_nanousd"])) if row else (0, 0)
        out.append(
            WindowState(kind, start, b.limit(kind), spent, reserved, bmod.resets_at(kind, now, b.timezone))
        )
    return out


def list_budgets(store: Store) -> list[Budget]:
    return [get(store, r["team"]) for r in store.select("budgets", columns="team", order="team")]


@dataclass
class Reservation:
    id: str
    team: str
    amount: int
    states: list[WindowState]  # after reserving
    level: str  # ok | soft (past the soft limit) | forced (reserved past the limit: action warn)


class Refused(Exception):
    def __init__(self, state: WindowState):
        self.state = state


def reserve(
    store: Store, b: Budget, amount: int, ttl_s: float, now: dt.datetime | None = None, force: bool = False
) -> Reservation:
    """Reserve `amount` in every window of the team, or raise Refused naming the window that is full.
    `force` reserves even past the limit (hard action `warn`), so the spend still shows as in flight.
    Expired reservations are released first when the budget looks full (and so never block a call)."""
    now = now or now_utc()
    try:
        if runs_functions(store):  # Postgres and Supabase: one call does all of it, expiry included
            res = _reserve_call(store, b, amount, ttl_s, now, force)
        else:
            res = _reserve_sql(store, b, amount, ttl_s, now, force)
    except Refused as refused:
        _alert(store, b, "hard", refused.state)
        raise
    if res.level != "ok":
        worst = max(res.states, key=lambda s: s.ratio())
        _alert(store, b, "hard" if res.level == "forced" else "soft", worst)
    return res


def _reserve_call(store, b: Budget, amount: int, ttl_s: float, now: dt.datetime, force: bool) -> Reservation:
    """The reservation as database function elfctl_reserve (migration 0110): both windows, the
    reservation row, and (when a window is full) the team's expired reservations released and one
    more try, all in the database, so over Supabase's REST API too no client reads and writes."""
    rid = new_id()
    day, month = (bmod.window_start(k, now, b.timezone) for k in bmod.WINDOWS)
    got = store.call("elfctl_reserve", {
        "p_id": rid, "p_team": b.team, "p_amount": amount, "p_day": day, "p_month": month,
        "p_day_limit": b.limit("day"), "p_month_limit": b.limit("month"), "p_force": force,
        "p_now": iso(now), "p_expires_at": iso(now + dt.timedelta(seconds=ttl_s))})
    if not got["ok"]:
        kind = got["window"]
        raise Refused(WindowState(kind, got["start"], b.limit(kind), int(got["spent"]), int(got["reserved"]),
                                  bmod.resets_at(kind, now, b.timezone)))
    st = [WindowState(kind, start, b.limit(kind), int(got["windows"][kind]["spent"]),
                      int(got["windows"][kind]["reserved"]), bmod.resets_at(kind, now, b.timezone))
          for kind, start in (("day", day), ("month", month))]
    return _reservation(rid, b, amount, st, force)


def _reserve_sql(store: Store, b: Budget, amount: int, ttl_s: float, now: dt.datetime, force: bool) -> Reservation:
    """SQLite (no database functions): the same steps as statements in the store's transactions."""
    try:
        return _reserve_once(store, b, amount, ttl_s, now, force)
    except Refused:
        with store.transaction() as tx:
            if not expire_in(tx, now, b.team):
                raise
        return _reserve_once(store, b, amount, ttl_s, now, force)


def _alert(store: Store, b: Budget, level: str, state: WindowState) -> None:
    """Queue the alert of a crossing, once per window and team (the outbox keeps one per key)."""
    adj = bmod.WINDOW_ADJ[state.window]
    what = "reached its" if level == "hard" else f"passed {b.soft_ratio:.0%} of its"
    outbox.emit_quietly(store, Event(
        f"budget.{level}", f"team {b.team} {what} {adj} budget of {bmod.fmt_usd(state.limit)}",
        dedupe_key=f"budget.{level}:{b.team}:{state.window}:{state.start}",
        severity="critical" if level == "hard" else "warning", team=b.team,
        details={"team": b.team, "window": adj, "limit": bmod.fmt_usd(state.limit),
                 "spent": bmod.fmt_usd(state.spent), "in flight": bmod.fmt_usd(state.reserved),
                 "resets at": iso(state.resets_at), "action at the limit": b.hard_action
                 if level == "hard" else b.soft_action}))


class _NotBoth(Exception):
    """The one-statement reservation did not move both windows: roll back, take the long way."""


def _reserve_both(tx: Tx, b: Budget, amount: int, day: str, month: str, now: dt.datetime, force: bool):
    """SQLite: both windows in one conditional UPDATE (writers are serialised, so no lock order to
    mind). Raises _NotBoth when a window is full or its counter does not exist yet."""
    conds, params = [], [amount, b.team]
    for kind, start in (("day", day), ("month", month)):
        cond, limit = "(window_kind = ? AND window_start = ?", b.limit(kind)
        params += [kind, start]
        if limit is not None and not force:
            cond += " AND spent_nanousd + reserved_nanousd + ? <= ?"
            params += [amount, limit]
        conds.append(cond + ")")
    got = tx.query(
        "UPDATE spend_counters SET reserved_nanousd = reserved_nanousd + ? WHERE team = ? AND "
        f"({' OR '.join(conds)}) RETURNING window_kind, window_start, spent_nanousd, reserved_nanousd",
        params,
    )
    if len(got) != 2:
        raise _NotBoth
    by_kind = {g["window_kind"]: g for g in got}
    return [
        WindowState(
            kind,
            by_kind[kind]["window_start"],
            b.limit(kind),
            int(by_kind[kind]["spent_nanousd"]),
            int(by_kind[kind]["reserved_nanousd"]),
            bmod.resets_at(kind, now, b.timezone),
        )
        for kind in bmod.WINDOWS
    ]


def _insert_reservation(tx: Tx, rid: str, b: Budget, amount: int, day: str, month: str, now, ttl_s) -> None:
    tx.execute(
        "INSERT INTO budget_reservations (id, team, amount_nanousd, day_start, month_start, "
        "created_at, expires_at) VALUES (?,?,?,?,?,?,?)",
        (rid, b.team, amount, day, month, iso(now), iso(now + dt.timedelta(seconds=ttl_s))),
    )


def _reservation(rid: str, b: Budget, amount: int, st: list[WindowState], force: bool) -> Reservation:
    lvl = bmod.level(b, st)
    return Reservation(
        rid, b.team, amount, st, "forced" if force and lvl == "hard" else ("soft" if lvl != "ok" else "ok")
    )


def _reserve_once(
    store: Store, b: Budget, amount: int, ttl_s: float, now: dt.datetime, force: bool
) -> Reservation:
    rid = new_id()
    day, month = (bmod.window_start(k, now, b.timezone) for k in bmod.WINDOWS)
    try:
        with store.transaction() as tx:
            st = _reserve_both(tx, b, amount, day, month, now, force)
            _insert_reservation(tx, rid, b, amount, day, month, now, ttl_s)
        return _reservation(rid, b, amount, st, force)
    except _NotBoth:
        pass  # rolled back: the window-by-window path says which is full or creates it
    with store.transaction() as tx:
        st = [_reserve_window(tx, b, kind, start, amount, now, force)
              for kind, start in (("day", day), ("month", month))]
        _insert_reservation(tx, rid, b, amount, day, month, now, ttl_s)
    return _reservation(rid, b, amount, st, force)


def _reserve_window(tx, b: Budget, kind: str, start: str, amount: int, now: dt.datetime,
                    force: bool) -> WindowState:
    """Add `amount` to one window's reservations if it fits under the limit (always with force);
    Refused, naming the window, when it does not."""
    limit = b.limit(kind)
    sql = (
        "UPDATE spend_counters SET reserved_nanousd = reserved_nanousd + ? "
        "WHERE team = ? AND window_kind = ? AND window_start = ?"
    )
    params: tuple = (amount, b.team, kind, start)
    if limit is not None and not force:
        sql += " AND spent_nanousd + reserved_nanousd + ? <= ?"
        params += (amount, limit)
    sql += " RETURNING spent_nanousd, reserved_nanousd"
    got = tx.query(sql, params)
    if not got:
        exists = tx.query(
            "SELECT spent_nanousd, reserved_nanousd FROM spend_counters WHERE team = ? AND "
            "window_kind = ? AND window_start = ?",
            (b.team, kind, start),
        )
        if exists:  # the condition failed: this window is full
            raise Refused(
                WindowState(
                    kind,
                    start,
                    limit,
                    int(exists[0]["spent_nanousd"]),
                    int(exists[0]["reserved_nanousd"]),
                    bmod.resets_at(kind, now, b.timezone),
                )
            )
        # First call of a new window: create its counter (a concurrent creator is fine).
        tx.execute(
            "INSERT INTO spend_counters (team, window_kind, window_start) VALUES (?,?,?) "
            "ON CONFLICT (team, window_kind, window_start) DO NOTHING",
            (b.team, kind, start),
        )
        got = tx.query(sql, params)
        if not got:
            raise Refused(
                WindowState(kind, start, limit, 0, 0, bmod.resets_at(kind, now, b.timezone))
            )
    return WindowState(
        kind,
        start,
        limit,
        int(got[0]["spent_nanousd"]),
        int(got[0]["reserved_nanousd"]),
        bmod.resets_at(kind, now, b.timezone),
    )


def release(store: Store, reservation_id: str) -> None:
    """Give a reservation back (the call failed or was not made)."""
    if runs_functions(store):  # one call: settle_in is a function there
        ledger.settle_in(store, [reservation_id])
        return
    with store.transaction() as tx:
        ledger.settle_in(tx, [reservation_id])


def expire_in(tx: Tx, now: dt.datetime, team: str | None = None) -> int:
    """Release reservations past their expiry (their process died). Returns how many."""
    if runs_functions(tx):  # Postgres and Supabase: the same steps as database function elfctl_expire
        return int(tx.call("elfctl_expire", {"p_now": iso(now), "p_team": team}))
    sql = "DELETE FROM budget_reservations WHERE expires_at < ?"
    params: tuple = (iso(now),)
    if team:
        sql += " AND team = ?"
        params += (team,)
    gone = tx.query(sql + " RETURNING team, amount_nanousd, day_start, month_start", params)
    for g in gone:
        ledger.unreserve(tx, g)
    return len(gone)


def show(store: Store, team: str, spec_budget=None, now: dt.datetime | None = None) -> dict:
    b = get(store, team, spec_budget)
    if b is None:
        return {"team": team, "budget": None, "windows": []}
    now = now or now_utc()
    st = states(store, b, now)
    return {
        "team": team,
        "budget": b,
        "level": bmod.level(b, st),
        "windows": [
            {
                "window": s.window,
                "start": s.start,
                "limit_nanousd": s.limit,
                "spent_nanousd": s.spent,
                "reserved_nanousd": s.reserved,
                "remaining_nanousd": s.remaining,
                "resets_at": iso(s.resets_at),
            }
            for s in st
        ],
    }
