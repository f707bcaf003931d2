"""The queue_request strategy's bounded durable queue (migration 0080): calls put aside while their
resource is unwell, run again by `drain` once it is healthy (`elfctl queue drain`, or the library
after the resource answers again).

A row names the function as `module:qualname` and holds its arguments as JSON; draining imports
that module and calls the function once. So whoever can write to the store can name code that a
drainer runs: the store is as trusted as the code. Targets are checked to be dotted identifiers.

Every write is one atomic step: on Postgres and Supabase a database function (migration 0140:
elfctl_queue_put, _claim, _done; over REST there is no transaction to hold SQL), on SQLite the SQL
below in a transaction. Reads are `Rows.select`, the same on every store.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elfctl.domain.clock import iso, now
from elfctl.errors import InputError, OperationFailed
from elfctl.ids import new_id
from elfctl.ports import Store, runs_functions
from elfctl.redact import scrub
from elfctl.services.actions import trail

TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
CLAIM_S = 300.0  # a drainer killed mid-run frees its row after this
MAX_ATTEMPTS = 5  # a row failing this often stays listed (state failed) until dropped


class QueueFull(OperationFailed):
    """The resource's queue holds its limit already."""

    code = "queue_full"


@dataclass(frozen=True)
class Entry:
    id: str
    resource: str
    team: str | None
    target: str
    enqueued_at: str
    expires_at: str | None
    attempts: int
    last_error: str | None
    state: str  # queued | running | failed | expired


@dataclass(frozen=True)
class Drained:
    id: str
    resource: str
    target: str
    result: str  # ok | failed: ... | expired | skipped: ...


def target_of(fn: Callable) -> str:
    ref = f"{fn.__module__}:{fn.__qualname__}"
    if not TARGET.match(ref) or "<locals>" in ref:
        raise ValueError(f"{ref} cannot be queued: only module-level functions can be run again later")
    return ref


def payload_of(args: tuple, kwargs: dict) -> str:
    try:
        return json.dumps({"args": list(args), "kwargs": kwargs}, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the arguments are not JSON ({exc}): the call cannot be queued") from None


def enqueue(store: Store, resource: str, target: str, payload: str, limit: int, team: str | None = None,
            ttl_s: float | None = None, trigger: str = "", actor: str = "elfctl.resilience") -> str:
    """Queue one call; QueueFull when `resource` holds `limit` rows already (checked and counted in one
    conditional UPDATE, so concurrent enqueuers never pass it)."""
    if not TARGET.match(target):
        raise InputError(f"queue target {target!r} is not module:qualname")
    t = now()
    entry_id = new_id()
    full = QueueFull(f"queue of {resource} is full ({limit} requests)",
                     hint="`elfctl queue drain` runs them once the resource is healthy; `elfctl queue drop` discards them")
    expires = iso(t + dt.timedelta(seconds=ttl_s)) if ttl_s else None
    action = trail.Action(resource=resource, trigger=trigger or "call failed", strategy="queue_request",
                          result="queued", actor=actor, team=team, target=entry_id)
    if runs_functions(store):
        _, args = trail.prepared(action)
        row = {"id": entry_id, "resource": resource, "team": team, "target": target, "payload": payload,
               "enqueued_at": iso(t), "expires_at": expires}
        if not store.call("elfctl_queue_put", {"p_row": row, "p_limit": int(limit), **args}):
            raise full
        return entry_id
    with store.transaction() as tx:
        tx.execute("INSERT INTO resilience_queue_bounds (resource, queued) VALUES (?, 0) "
                   "ON CONFLICT (resource) DO NOTHING", (resource,))
        if tx.execute("UPDATE resilience_queue_bounds SET queued = queued + 1 WHERE resource = ? AND queued < ?",
                      (resource, int(limit))) != 1:
            raise full
        tx.execute("INSERT INTO resilience_queue (id, resource, team, target, payload, enqueued_at, expires_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", (entry_id, resource, team, target, payload, iso(t), expires))
        trail.record(tx, action)
    return entry_id


def _state(row: dict, t: str) -> str:
    if row["expires_at"] and row["expires_at"] <= t:
        return "expired"
    if row["claimed_until"] and row["claimed_until"] > t:
        return "running"
    return "failed" if row["attempts"] >= MAX_ATTEMPTS else "queued"


_COLS = "id,resource,team,target,enqueued_at,expires_at,attempts,last_error,claimed_until"
PAGE = 1000  # rows per read: Supabase's REST API returns at most max-rows (1,000 by default) anyway


def _entries(rows: list[dict]) -> list[Entry]:
    t = iso(now())
    return [Entry(r["id"], r["resource"], r["team"], r["target"], r["enqueued_at"], r["expires_at"],
                  int(r["attempts"]), r["last_error"], _state(r, t)) for r in rows]


def listing(store: Store, resource: str | None = None, limit: int = 1000) -> list[Entry]:
    rows = store.select("resilience_queue", {"resource": resource} if resource else None, columns=_COLS,
                        order="enqueued_at,id", limit=int(limit))
    return _entries(rows)


def _remove(tx, entry_id: str, resource: str) -> int:
    n = tx.execute("DELETE FROM resilience_queue WHERE id = ?", (entry_id,))
    if n:
        tx.execute("UPDATE resilience_queue_bounds SET queued = queued - ? WHERE resource = ?", (n, resource))
    return n


def _done_item(entry_id: str, error: str | None, action: trail.Action) -> dict:
    """One item of elfctl_queue_done: the row, its error (None: remove it) and its trail row."""
    _, args = trail.prepared(action)
    return {"id": entry_id, "error": error, "action": args["p_action"], "event": args["p_event"]}


def drop(store: Store, actor: str, ids: list[str] | None = None, resource: str | None = None) -> list[Entry]:
    """Discard queued calls: these ids, or every one of a resource, or all (ids and resource None).
    Read and removed a page at a time until none is left (a REST read returns at most max-rows)."""
    where: dict[str, Any] = {}
    if resource:
        where["resource"] = resource
    if ids:
        where["id"] = sorted(set(ids))
        missing = sorted(set(ids) - {r["id"] for r in store.select("resilience_queue", where, columns="id")})
        if missing:
            raise InputError(f"no queued request {missing[0]!r}", hint="`elfctl queue list` shows the ids",
                             code="not_found")
    dropped: list[Entry] = []
    while True:
        page = _entries(store.select("resilience_queue", where or None, columns=_COLS, order="enqueued_at,id",
                                     limit=PAGE))
        if not page:
            return dropped
        actions = {e.id: trail.Action(resource=e.resource, trigger="dropped by hand", strategy="queue_request",
                                      result="dropped", actor=actor, team=e.team, target=e.id) for e in page}
        if runs_functions(store):
            gone = set(store.call("elfctl_queue_done", {"p_items": [_done_item(i, None, a) for i, a in actions.items()]}))
        else:
            gone = set()
            with store.transaction() as tx:
                for e in page:
                    if _remove(tx, e.id, e.resource):
                        gone.add(e.id)
                        trail.record(tx, actions[e.id])
        dropped += [e for e in page if e.id in gone]


def resolve(target: str) -> Callable:
    """The function a row names; the undecorated one when it is wrapped by @fallback (running it
    must not queue it again)."""
    if not TARGET.match(target):
        raise InputError(f"queue target {target!r} is not module:qualname")
    module, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return getattr(obj, "__elfctl_inner__", obj)


def _claim(store: Store, entry_id: str, claim_s: float) -> dict | None:
    t = now()
    if runs_functions(store):  # one UPDATE ... RETURNING in the database
        return store.call("elfctl_queue_claim", {"p_id": entry_id, "p_now": iso(t),
                                                 "p_until": iso(t + dt.timedelta(seconds=claim_s)), "p_max": MAX_ATTEMPTS})
    n = store.execute("UPDATE resilience_queue SET claimed_until = ?, attempts = attempts + 1 WHERE id = ? AND "
                      "attempts < ? AND (claimed_until IS NULL OR claimed_until <= ?)",
                      (iso(t + dt.timedelta(seconds=claim_s)), entry_id, MAX_ATTEMPTS, iso(t)))
    if n != 1:
        return None
    rows = store.query("SELECT id, resource, team, target, payload, expires_at FROM resilience_queue WHERE id = ?",
                       (entry_id,))
    return rows[0] if rows else None


def drain(store: Store, actor: str, resource: str | None = None, healthy: Callable[[str], bool] | None = None,
          run: Callable[[str], Callable] = resolve, limit: int = 1000, claim_s: float = CLAIM_S) -> list[Drained]:
    """Run the queued calls (oldest first), each once: done ones are removed, failed ones stay with
    their error (counted; MAX_ATTEMPTS failures leave them as failed), expired ones are removed
    unrun. `healthy(resource)`: False skips that resource's rows (its circuit is still open).
    `claim_s`: the longest one call may run; a drainer killed mid-call leaves its row to the next
    drainer once that has passed (the call may then run twice: queued calls should be idempotent)."""
    out: list[Drained] = []
    verdict: dict[str, bool] = {}
    for e in listing(store, resource, limit):
        if e.state in ("running", "failed"):
            continue
        if healthy is not None:
            if e.resource not in verdict:
                verdict[e.resource] = healthy(e.resource)
            if not verdict[e.resource]:
                out.append(Drained(e.id, e.resource, e.target, "skipped: resource still unhealthy"))
                continue
        row = _claim(store, e.id, claim_s)
        if row is None:
            continue  # another drainer took it
        if row["expires_at"] and row["expires_at"] <= iso(now()):
            result = "expired"
        else:
            try:
                body = json.loads(row["payload"])
                run(row["target"])(*body.get("args", []), **body.get("kwargs", {}))
                result = "ok"
            except Exception as exc:  # noqa: BLE001 - the row keeps the error; the next one runs
                result = f"failed: {type(exc).__name__}: {scrub(str(exc))[:300]}"
        action = trail.Action(resource=row["resource"], trigger="queue drain", strategy="queue_request",
                              result=result, actor=actor, team=row["team"], target=row["id"])
        error = None if result in ("ok", "expired") else result
        if runs_functions(store):
            store.call("elfctl_queue_done", {"p_items": [_done_item(row["id"], error, action)], "p_always": True})
        else:
            with store.transaction() as tx:
                if error is None:
                    _remove(tx, row["id"], row["resource"])
                else:
                    tx.execute("UPDATE resilience_queue SET claimed_until = NULL, last_error = ? WHERE id = ?",
                               (error, row["id"]))
                trail.record(tx, action)
        out.append(Drained(row["id"], row["resource"], row["target"], result))
    return out


def pending(store: Store, resource: str) -> int:
    rows = store.select("resilience_queue_bounds", {"resource": resource}, columns="queued")
    return int(rows[0]["queued"]) if rows else 0
