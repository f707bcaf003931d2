"""The alert outbox: events are rows in the store (written inside the caller's own transaction where
it has one), delivered later by the sender. Nothing on a call or deploy path waits for a receiver."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading

from elfctl.domain.clock import iso, now
from elfctl.domain.notify import Event
from elfctl.ids import new_id
from elfctl.ports import Tx, runs_functions
from elfctl.redact import scrub

log = logging.getLogger("elfctl.notify")

# Dedupe keys this process already wrote: a team past its soft limit emits on every call; the store's
# unique key keeps one row, this keeps it to one INSERT per process.
_seen: set[str] = set()
_seen_lock = threading.Lock()
_emitted = False  # this process queued an event: the CLI starts a sender when it exits


def take_emitted() -> bool:
    global _emitted
    was, _emitted = _emitted, False
    return was


def _clean(value):
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def emit(tx: Tx, event: Event) -> bool:
    """Store the event unless one with its dedupe key exists. Returns whether it is new. Text is
    scrubbed of registered secrets and URL passwords before it is stored."""
    with _seen_lock:
        if event.dedupe_key in _seen:
            return False
    row = stored(event)
    if runs_functions(tx):
        # Postgres and Supabase: database function elfctl_record_action (0130) with no action, the
        # one write of an event over REST (no SQL there); on Postgres it joins the caller's transaction
        new = bool(tx.call("elfctl_record_action", {"p_action": None, "p_event": row})["new"])
    else:
        new = bool(tx.query(f"INSERT INTO notify_events ({', '.join(row)}) VALUES ({', '.join('?' * len(row))}) "
                            "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id", list(row.values())))
    noted(event, new)
    return new


def stored(event: Event) -> dict:
    """The event as its notify_events row: id and time filled in, text scrubbed, details as JSON."""
    return {"id": event.id or new_id(), "dedupe_key": event.dedupe_key, "ts": event.ts or iso(now()),
            "kind": event.kind, "severity": event.severity, "team": event.team, "title": scrub(event.title),
            "details": json.dumps(_clean(event.details), default=str)}


def noted(event: Event, new: bool) -> None:
    """An event written (by emit, or by the actions trail with its action): this process will not write
    its key again, and queued one for the sender when it was new."""
    global _emitted
    with _seen_lock:
        _seen.add(event.dedupe_key)
        _emitted = _emitted or new


def emit_quietly(store, event: Event) -> None:
    """emit() for paths that must not fail because of alerts (an LLM call, a deploy's outcome): a
    store without the outbox table yet, or any store error, is logged and ignored."""
    try:
        emit(store, event)
    except Exception as exc:  # noqa: BLE001 - an alert never fails the work it reports on
        log.warning("alert %s not queued: %s", event.kind, scrub(str(exc)))


def _event(row: dict) -> Event:
    return Event(kind=row["kind"], title=row["title"], dedupe_key=row["dedupe_key"], severity=row["severity"],
                 team=row["team"], details=json.loads(row["details"] or "{}"), ts=row["ts"], id=row["id"])


# A channel added later does not receive the history: only events younger than this.
BACKLOG = dt.timedelta(days=1)


def due(tx: Tx, channels: list[str], at: dt.datetime, limit: int = 100) -> list[tuple[Event, str, int]]:
    """(event, channel, attempts so far) to try now: recent events with no delivery row yet for a
    channel, and pending deliveries whose next attempt time has come. Disabled channels are skipped."""
    out: list[tuple[Event, str, int]] = []
    if runs_functions(tx):  # Postgres and Supabase: elfctl_notify_due (0150), the join in the database
        for ch in channels:
            rows = tx.call("elfctl_notify_due", {"p_channel": ch, "p_since": iso(at - BACKLOG), "p_at": iso(at),
                                                 "p_limit": limit})
            out += [(_event(r), ch, int(r["tried"] or 0)) for r in rows]
        return out
    off = set(disabled(tx))
    for ch in channels:
        if ch in off:
            continue
        rows = tx.query(
            "SELECT e.*, d.attempts AS tried FROM notify_events e LEFT JOIN notify_deliveries d "
            "ON d.event_id = e.id AND d.channel = ? WHERE (d.event_id IS NULL AND e.ts >= ?) "
            "OR (d.state IN ('pending', 'sending') AND (d.next_at IS NULL OR d.next_at <= ?)) "
            "ORDER BY e.ts, e.id LIMIT ?",
            (ch, iso(at - BACKLOG), iso(at), limit),
        )
        out += [(_event(r), ch, int(r["tried"] or 0)) for r in rows]
    return out


def claim(tx: Tx, event_id: str, channel: str, attempts: int, at: dt.datetime, lease_s: float) -> bool:
    """Take one delivery for this sender until `lease_s` from now: two senders never post the same
    event to the same channel at once, and a sender killed mid-post leaves it due again after the lease."""
    lease = iso(at + dt.timedelta(seconds=lease_s))
    if runs_functions(tx):  # Postgres and Supabase: the same two steps in one call, elfctl_notify_claim (0150)
        return bool(tx.call("elfctl_notify_claim", {"p_event_id": event_id, "p_channel": channel,
                                                    "p_attempts": attempts, "p_lease": lease, "p_at": iso(at)}))
    if attempts == 0 and tx.query(
            "INSERT INTO notify_deliveries (event_id, channel, state, attempts, next_at, updated_at) "
            "VALUES (?,?,'sending',0,?,?) ON CONFLICT (event_id, channel) DO NOTHING RETURNING event_id",
            (event_id, channel, lease, iso(at))):
        return True
    return tx.execute(
        "UPDATE notify_deliveries SET state = 'sending', next_at = ?, updated_at = ? WHERE event_id = ? "
        "AND channel = ? AND state IN ('pending', 'sending') AND (next_at IS NULL OR next_at <= ?)",
        (lease, iso(at), event_id, channel, iso(at))) == 1


def settle(tx: Tx, event_id: str, channel: str, state: str, attempts: int, next_at: dt.datetime | None,
           error: str | None, gone: str | None = None) -> None:
    """Record one delivery attempt's outcome: sent, pending (with its next attempt) or failed. With
    `gone` (why a receiver answered 410 Gone), the channel is disabled in the same transaction."""
    if runs_functions(tx):  # Postgres and Supabase: elfctl_notify_settle (0150), both writes in one call
        tx.call("elfctl_notify_settle", {
            "p_event_id": event_id, "p_channel": channel, "p_state": state, "p_attempts": attempts,
            "p_next_at": iso(next_at) if next_at else None, "p_error": scrub(error)[:500] if error else None,
            "p_at": iso(now()), "p_disable": scrub(gone)[:300] if gone else None})
        return
    if gone is not None:
        with tx.transaction() as inner:  # type: ignore[attr-defined] - a Store here (the sender's)
            disable(inner, channel, gone)
            settle(inner, event_id, channel, state, attempts, next_at, error)
        return
    tx.execute(
        "INSERT INTO notify_deliveries (event_id, channel, state, attempts, next_at, last_error, updated_at) "
        "VALUES (?,?,?,?,?,?,?) ON CONFLICT (event_id, channel) DO UPDATE SET state = excluded.state, "
        "attempts = excluded.attempts, next_at = excluded.next_at, last_error = excluded.last_error, "
        "updated_at = excluded.updated_at",
        (event_id, channel, state, attempts, iso(next_at) if next_at else None,
         scrub(error)[:500] if error else None, iso(now())),
    )


def disable(tx: Tx, channel: str, reason: str) -> None:
    tx.execute("INSERT INTO notify_channels (channel, disabled_at, reason) VALUES (?,?,?) "
               "ON CONFLICT (channel) DO NOTHING", (channel, iso(now()), scrub(reason)[:300]))


def disabled(tx: Tx) -> dict[str, dict]:
    # a select: the REST store serves it too
    return {r["channel"]: r for r in tx.select("notify_channels", columns="channel, disabled_at, reason",
                                               order="channel")}


def listing(tx: Tx, failed_only: bool = False, limit: int = 50) -> list[dict]:
    """Newest events first, each with its deliveries (channel, state, attempts, last error); with
    `failed_only`, only events a channel did not take. Reads the listed events' deliveries only."""
    if runs_functions(tx):  # Postgres and Supabase: elfctl_notify_events (0160), the join in the database
        return [_listed(row, row["deliveries"]) for row in
                tx.call("elfctl_notify_events", {"p_failed_only": failed_only, "p_limit": int(limit)})]
    if failed_only:
        rows = tx.query("SELECT * FROM notify_events WHERE id IN (SELECT event_id FROM notify_deliveries "
                        "WHERE state = 'failed') ORDER BY ts DESC, id DESC LIMIT ?", (limit,))
    else:
        rows = tx.query("SELECT * FROM notify_events ORDER BY ts DESC, id DESC LIMIT ?", (limit,))
    by_event: dict[str, list[dict]] = {}
    if rows:
        ids = [r["id"] for r in rows]
        for d in tx.query("SELECT event_id, channel, state, attempts, next_at, last_error FROM notify_deliveries "
                          f"WHERE event_id IN ({', '.join('?' * len(ids))})", ids):
            by_event.setdefault(d["event_id"], []).append(
                {k: d[k] for k in ("channel", "state", "attempts", "next_at", "last_error")})
    return [_listed(row, by_event.get(row["id"], [])) for row in rows]


def _listed(row: dict, deliveries: list[dict]) -> dict:
    ev = _event(row)
    return {"id": ev.id, "ts": ev.ts, "kind": ev.kind, "severity": ev.severity, "team": ev.team,
            "title": ev.title, "deliveries": deliveries}


def retry(tx: Tx, event_ids: list[str] | None = None, enable: bool = False) -> int:
    """Send failed deliveries again (all, or those of the given events): back to pending, attempts
    reset. `enable` also re-enables channels a receiver disabled with 410. Returns how many."""
    if runs_functions(tx):  # Postgres and Supabase: elfctl_notify_retry (0160), both writes in one call
        return int(tx.call("elfctl_notify_retry", {"p_event_ids": list(event_ids or []), "p_enable": enable}))
    if enable:
        tx.execute("DELETE FROM notify_channels")
    sql = "UPDATE notify_deliveries SET state = 'pending', attempts = 0, next_at = NULL WHERE state = 'failed'"
    params: list = []
    if event_ids:
        sql += f" AND event_id IN ({', '.join('?' * len(event_ids))})"
        params = list(event_ids)
    return tx.execute(sql, params)
