"""`elfctl breakers list | open NAME | close NAME`: the shared circuits as the store holds them, and
isolating or resetting one by hand (each recorded in the actions trail)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from elfctl.domain.clock import iso, now
from elfctl.errors import InputError
from elfctl.ports import Store, runs_functions
from elfctl.services.actions import trail
from elfctl.services.notify import outbox


@dataclass(frozen=True)
class Breaker:
    name: str
    state: str  # closed | open | half-open
    failures: int
    held: str | None  # who opened it by hand (then it stays open until closed by hand)
    opened_at: str | None
    probe_in_s: float | None  # seconds until a probe may be sent (open, not held)
    fail_max: int | None
    reset_timeout_s: float | None
    updated_at: str


def _of(row: dict, t: dt.datetime) -> Breaker:
    probe_in = None
    if row["state"] == "open" and not row["held"] and row["opened_at"] and row["reset_timeout_s"]:
        end = dt.datetime.fromisoformat(row["opened_at"]) + dt.timedelta(seconds=float(row["reset_timeout_s"]))
        probe_in = max(0.0, round((end - t).total_seconds(), 1))
    return Breaker(row["name"], row["state"], int(row["fail_counter"] or 0), row["held"], row["opened_at"],
                   probe_in, row["fail_max"], row["reset_timeout_s"], row["updated_at"])


_COLS = "name, state, fail_counter, held, opened_at, fail_max, reset_timeout_s, updated_at"


def listing(store: Store) -> list[Breaker]:
    t = now()
    return [_of(r, t) for r in store.select("breaker_state", columns=_COLS, order="name")]


def _one(store: Store, name: str) -> dict:
    rows = store.select("breaker_state", {"name": name}, columns=_COLS)
    if not rows:
        raise _unknown(store, name)
    return rows[0]


def _unknown(store: Store, name: str) -> InputError:
    known = [r["name"] for r in store.select("breaker_state", columns="name", order="name", limit=20)]
    return InputError(f"no circuit breaker named {name!r}",
                      hint=f"`elfctl breakers list` shows them ({', '.join(known) or 'none yet'})", code="not_found")


def open_(store: Store, name: str, actor: str, reason: str = "") -> Breaker:
    """Isolate `name` by hand: every process refuses calls through it (within breaker.FRESH_S)
    until `close`. Creates the row for a circuit no process has used yet."""
    action = trail.Action(resource=name, trigger=reason or "opened by hand", strategy="circuit_break",
                          result="opened (held until closed by hand)", actor=actor, target=name)
    if runs_functions(store):
        return _held(store, name, actor, action)
    t = iso(now())
    with store.transaction() as tx:
        tx.execute("INSERT INTO breaker_state (name, state, updated_at) VALUES (?, 'closed', ?) "
                   "ON CONFLICT (name) DO NOTHING", (name, t))
        tx.execute("UPDATE breaker_state SET state = 'open', held = ?, opened_at = ?, probe_until = NULL, "
                   "updated_at = ? WHERE name = ?", (actor, t, t, name))
        trail.record(tx, action)
    return _of(_one(store, name), now())


def close(store: Store, name: str, actor: str, reason: str = "") -> Breaker:
    """Reset `name`: closed, counters zeroed, a hand-held open released."""
    action = trail.Action(resource=name, trigger=reason or "closed by hand", strategy="circuit_break",
                          result="closed", actor=actor, target=name)
    if runs_functions(store):
        return _held(store, name, None, action)
    _one(store, name)
    t = iso(now())
    with store.transaction() as tx:
        tx.execute("UPDATE breaker_state SET state = 'closed', held = NULL, fail_counter = 0, success_counter = 0, "
                   "opened_at = NULL, probe_until = NULL, updated_at = ? WHERE name = ?", (t, name))
        trail.record(tx, action)
    return _of(_one(store, name), now())


def _held(store, name: str, held: str | None, action: trail.Action) -> Breaker:
    """open_/close on Postgres and Supabase: database function elfctl_breaker_hold (0130) makes the
    transition and writes its trail row and alert in one call, the only atomic way over REST (which
    has no transaction); the same on Postgres, so both run one code. None from it: no such circuit."""
    done, args = trail.prepared(action)
    got = store.call("elfctl_breaker_hold", {"p_name": name, "p_held": held, "p_at": done.ts, **args})
    if got is None:
        raise _unknown(store, name)
    outbox.noted(trail.alert(done), bool(got["new"]))
    return _of(got["breaker"], now())
