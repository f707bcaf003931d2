"""The audit trail of automatic actions: one row per thing the platform did by itself (fallback
taken, breaker opened or closed, model degraded, request queued or dropped, scale down and restore,
cache served, registry entry changed). Every capability writes here through `record`, so
`elfctl audit actions` and the notifications read one table."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from elfctl.domain.clock import iso, now
from elfctl.domain.notify import Event
from elfctl.ids import new_id
from elfctl.ports import Tx, runs_functions
from elfctl.redact import scrub
from elfctl.services.notify import outbox


@dataclass(frozen=True)
class Action:
    resource: str
    trigger: str
    strategy: str
    result: str
    actor: str
    team: str | None = None
    target: str | None = None
    ts: str = ""
    id: str = ""


_COLUMNS = ("id", "ts", "resource", "team", "trigger", "strategy", "target", "result", "actor")


def record(tx: Tx, action: Action) -> Action:
    """Append one action and its alert (inside the caller's transaction when it passes one). Free text
    is scrubbed of anything that looks like a secret before it is stored."""
    done, args = prepared(action)
    if runs_functions(tx):
        # Postgres and Supabase: one call of elfctl_record_action (0130) writes both rows. Over REST it
        # is the only way (no SQL, no transaction to hold the two inserts); on Postgres the call runs
        # inside the caller's transaction like the SQL it replaces. SQLite: the SQL below.
        outbox.noted(alert(done), bool(tx.call("elfctl_record_action", args)["new"]))
        return done
    row = args["p_action"]
    tx.execute(f"INSERT INTO platform_actions ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
               [row[c] for c in _COLUMNS])
    outbox.emit(tx, alert(done))  # every automatic action is also an alert, in the same transaction
    return done


def prepared(action: Action) -> tuple[Action, dict]:
    """The action as it is stored (id, time, scrubbed text) and the arguments of elfctl_record_action
    (its row and its alert's outbox row), for callers that write it within a function of their own."""
    done = Action(**{**asdict(action), "id": action.id or new_id(), "ts": action.ts or iso(now()),
                     "trigger": scrub(action.trigger), "result": scrub(action.result)})
    return done, {"p_action": asdict(done), "p_event": outbox.stored(alert(done))}


def alert(a: Action) -> Event:
    """The notification of an action: critical when it failed, a breaker opened or an entry went critical."""
    bad = a.result.startswith("failed") or a.strategy in ("circuit_break", "breaker_open") or "critical" in a.trigger
    title = f"{a.resource}: {a.strategy}" + (f" on {a.target}" if a.target else "") + f" ({a.result})"
    return Event(f"action.{a.strategy}", title, dedupe_key=f"action:{a.id}", severity="critical" if bad else "warning",
                 team=a.team, ts=a.ts, details={"resource": a.resource, "trigger": a.trigger, "strategy": a.strategy,
                                               "target": a.target, "result": a.result, "by": a.actor})


def recent(tx: Tx, since: dt.datetime | None = None, team: str | None = None, limit: int = 200,
           resource: str | None = None) -> list[Action]:
    """The newest actions first, optionally since a time, for one team, of one resource."""
    if runs_functions(tx):  # Postgres and Supabase: elfctl_recent_actions (0130), REST filters are equality only
        rows = tx.call("elfctl_recent_actions", {"p_since": iso(since) if since is not None else None,
                                                 "p_team": team, "p_resource": resource, "p_limit": int(limit)})
        return [Action(**{c: r[c] for c in _COLUMNS}) for r in rows]
    where, params = [], []
    if since is not None:
        where.append("ts >= ?")
        params.append(iso(since))
    if team is not None:
        where.append("team = ?")
        params.append(team)
    if resource is not None:
        where.append("resource = ?")
        params.append(resource)
    sql = f"SELECT {', '.join(_COLUMNS)} FROM platform_actions"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = tx.query(sql + " ORDER BY ts DESC, id DESC LIMIT ?", [*params, int(limit)])
    return [Action(**r) for r in rows]
