"""The registry's store operations: register, deregister, get, find, heartbeat, sweep. The API the
CLI, deploy, the gateway, `elfctl.registry` and the MCP service all use (table registry_entries,
migration 0090). `store` is a Store or an open transaction. Changes the platform makes by itself
(actor given) are rows in the actions trail."""

from __future__ import annotations

import datetime as dt
import json

from elfctl.domain import registry as rules
from elfctl.domain.clock import iso, now
from elfctl.domain.registry import Entry
from elfctl.errors import ElfError, InputError, StoreNotMigrated
from elfctl.ports import Rows, Tx, runs_functions

_COLS = ("name", "kind", "url", "endpoints", "owner", "lifecycle", "capabilities", "depends_on", "metadata",
         "ttl_s", "deregister_after_s", "check_status", "note", "heartbeat_at", "registered_at", "source")
_JSON = {"endpoints": dict, "capabilities": tuple, "depends_on": tuple, "metadata": dict}
_READ = ", ".join((*_COLS, "last_status"))
_SELECT = f"SELECT {_READ} FROM registry_entries"


class NotRegistered(ElfError):
    code = "not_found"


def validate(e: Entry) -> Entry:
    """The checks every way in shares (CLI flags, files, cards, deploy, the MCP service)."""
    rules.check_name(e.name)
    rules.check_name(e.kind, "kind")
    rules.check_url(e.url)
    for where, url in e.endpoints.items():
        rules.check_url(url, f"endpoint {where}")
    if e.owner is not None and not (isinstance(e.owner, str) and e.owner.strip()):
        raise InputError(f"--owner {e.owner!r} is empty", hint="name a team or a person")
    rules.check_lifecycle(e.lifecycle)
    e.capabilities = rules.check_capabilities(e.capabilities)
    for dep in e.depends_on:
        rules.check_name(dep, "depends_on")
    if e.name in e.depends_on:
        raise rules.loop_error([e.name, e.name], f"entry {e.name}")
    if e.check_status not in rules.STATUSES:
        raise InputError(f"status {e.check_status!r} is not a status", hint=f"use one of {', '.join(rules.STATUSES)}")
    try:
        json.dumps(e.metadata)
    except (TypeError, ValueError) as exc:
        raise InputError(f"entry {e.name}: metadata is not JSON ({exc})", hint="use text, numbers, lists and "
                         "mappings only") from None
    for what, value in (("ttl", e.ttl_s), ("deregister-after", e.deregister_after_s)):
        if value is not None and not 0 < value <= 10 * 365 * 86400:
            raise InputError(f"--{what} {value!r} must be more than 0 seconds", hint="e.g. 30s or 10m")
    return e


def _row(r: dict, at: dt.datetime) -> Entry:
    kw = {c: r[c] for c in _COLS}
    for c, kind in _JSON.items():
        raw = kw[c]
        kw[c] = kind(json.loads(raw)) if raw and raw not in ("{}", "[]") else kind()  # most are empty
    e = Entry(**kw)
    e.status, e.reason, _since = rules.liveness(e, at)
    return e


def _params(e: Entry) -> list:
    values = {c: getattr(e, c) for c in _COLS}
    for c, kind in _JSON.items():
        values[c] = json.dumps(list(values[c]) if kind is tuple else values[c], sort_keys=True)
    return [values[c] for c in _COLS]


def _select(store: Rows, relation: str, where: dict, columns: str = _READ, order: str | None = None) -> list[dict]:
    try:
        return store.select(relation, where, columns=columns, order=order)
    except StoreNotMigrated:
        raise StoreNotMigrated("the store has no registry yet (migration 0090)",
                               hint="run `elfctl db migrate` (or `elfctl infra up`)") from None


def _query(store: Tx, sql: str, params=()) -> list[dict]:
    try:
        return store.query(sql, params)
    except StoreNotMigrated:
        raise StoreNotMigrated("the store has no registry yet (migration 0090)",
                               hint="run `elfctl db migrate` (or `elfctl infra up`)") from None


def register(store, entry: Entry, actor: str | None = None, at: dt.datetime | None = None) -> Entry:
    """Add an entry or replace the one of that name (a re-registration counts as a heartbeat and keeps
    its registered_at). A name held by an entry of another kind is refused: names are unique across
    kinds, and replacing a team by a database silently would break whoever depends on it. A
    depends_on loop through the registered entries is refused, nothing written."""
    return register_many(store, [entry], actor, at)[0]


def register_many(store, entries: list[Entry], actor: str | None = None,
                  at: dt.datetime | None = None) -> list[Entry]:
    """`register` for several entries, all or none (`registry register --file`)."""
    for e in entries:
        validate(e)
    at = at or now()
    stamp = iso(at)
    for e in entries:
        e.heartbeat_at = e.heartbeat_at or stamp
    if runs_functions(store):  # Postgres and Supabase: one call (elfctl_registry_register, 0160), also over REST
        done = _register_call(store, entries, actor, at)
    else:
        with _tx(store) as tx:
            done = [_register_sql(tx, e, actor, at) for e in entries]
    for e in done:
        e.status, e.reason, _ = rules.liveness(e, at)
    return done


def _checked(e: Entry, old: dict | None, graph: dict[str, tuple]) -> None:
    """The kind and loop checks of a registration, on what was read (the same messages on every store)."""
    if old and old["kind"] != e.kind:
        raise InputError(f"name {e.name!r} is registered already as a {old['kind']}",
                         hint=f"choose another name, or `elfctl registry deregister {e.name}` first")
    if e.depends_on:
        graph[e.name] = e.depends_on
        loop = rules.cycle(graph, e.name)
        if loop:
            raise rules.loop_error(loop, f"entry {e.name}")
    elif e.name in graph:
        del graph[e.name]


def _register_sql(tx, entry: Entry, actor: str | None, at: dt.datetime) -> Entry:
    old = _query(tx, _SELECT + " WHERE name = ?", (entry.name,))
    graph = {r["name"]: tuple(json.loads(r["depends_on"])) for r in
             tx.query("SELECT name, depends_on FROM registry_entries WHERE depends_on <> '[]'")} \
        if entry.depends_on else {}
    _checked(entry, old[0] if old else None, graph)
    entry.registered_at = old[0]["registered_at"] if old else (entry.registered_at or iso(at))
    params = _params(entry)
    status = rules.liveness(entry, at)[0]
    if old:
        tx.execute(f"UPDATE registry_entries SET {', '.join(f'{c} = ?' for c in _COLS[1:])}, last_status = ? "
                   "WHERE name = ?", [*params[1:], status, entry.name])
        tx.execute("DELETE FROM registry_capabilities WHERE name = ?", (entry.name,))
    else:
        tx.execute(f"INSERT INTO registry_entries ({', '.join(_COLS)}, last_status) "
                   f"VALUES ({', '.join('?' * (len(_COLS) + 1))})", [*params, status])
    if entry.capabilities:
        tx.executemany("INSERT INTO registry_capabilities (capability, name) VALUES (?, ?)",
                       [(c, entry.name) for c in entry.capabilities])
    if actor:
        _trail(tx, actor, entry, "registered" if not old else "re-registered",
               f"{entry.kind} {entry.url or ''}".strip())
    return entry


def _register_call(store, entries: list[Entry], actor: str | None, at: dt.datetime) -> list[Entry]:
    """register_many on Postgres and Supabase: the checks on a select of what is registered (REST
    filters are equality only, so the graph is every entry's depends_on), then every entry, its
    capabilities and trail row in one call of elfctl_registry_register, which checks again under its
    lock and keeps each entry's registered_at."""
    from elfctl.services.actions import trail

    names = [e.name for e in entries]
    old = {r["name"]: r for r in _select(store, "registry_entries", {"name": names}, columns="name, kind")}
    graph = {}
    if any(e.depends_on for e in entries):
        graph = {r["name"]: tuple(json.loads(r["depends_on"])) for r in
                 _select(store, "registry_entries", {}, columns="name, depends_on") if r["depends_on"] != "[]"}
    items = []
    for e in entries:
        _checked(e, old.get(e.name), graph)
        e.registered_at = e.registered_at or iso(at)  # the stored one wins for an entry registered already
        item = dict(zip(_COLS, _params(e), strict=True), last_status=rules.liveness(e, at)[0])
        if actor:
            _, args = trail.prepared(_action(actor, e, "registered" if e.name not in old else "re-registered",
                                             f"{e.kind} {e.url or ''}".strip()))
            item.update(action=args["p_action"], event=args["p_event"])
        items.append(item)
    try:
        stamps = store.call("elfctl_registry_register", {"p_entries": items})
    except StoreNotMigrated:
        raise StoreNotMigrated("the store has no registry functions yet (migration 0160)",
                               hint="run `elfctl db migrate` (or `elfctl infra up`)") from None
    for e in entries:
        e.registered_at = stamps[e.name]
    return entries


def deregister(store, name: str, actor: str | None = None, why: str = "deregistered") -> bool:
    """Remove an entry; False when there was none."""
    rules.check_name(name)
    if runs_functions(store):  # Postgres and Supabase: one call (elfctl_registry_deregister, 0160)
        return _deregister_call(store, name, actor, why)
    with _tx(store) as tx:
        rows = _query(tx, "SELECT kind FROM registry_entries WHERE name = ?", (name,))
        tx.execute("DELETE FROM registry_capabilities WHERE name = ?", (name,))
        gone = tx.execute("DELETE FROM registry_entries WHERE name = ?", (name,)) > 0
        if gone and actor:
            _trail(tx, actor, Entry(name, kind=rows[0]["kind"]), why, "ok", strategy="deregister")
    return gone


def _deregister_call(store, name: str, actor: str | None, why: str) -> bool:
    """The entry, its capabilities and (with `actor`) its trail row removed and written in one call; the
    trail row names the team when the entry is one, so its kind is read first."""
    from elfctl.services.actions import trail

    args: dict = {"p_name": name}
    if actor:
        rows = _select(store, "registry_entries", {"name": name}, columns="kind")
        if not rows:
            return False
        _, recorded = trail.prepared(_action(actor, Entry(name, kind=rows[0]["kind"]), why, "ok", strategy="deregister"))
        args.update(recorded)
    try:
        return store.call("elfctl_registry_deregister", args) is not None
    except StoreNotMigrated:
        raise StoreNotMigrated("the store has no registry functions yet (migration 0160)",
                               hint="run `elfctl db migrate` (or `elfctl infra up`)") from None


def get(store, name: str, at: dt.datetime | None = None) -> Entry | None:
    """The entry, None when there is none or it is past deregister_after in critical."""
    rules.check_name(name)
    at = at or now()
    rows = _select(store, "registry_entries", {"name": name})
    if not rows:
        return None
    e = _row(rows[0], at)
    return None if rules.expired(e, at) else e


def find(store, capability: str | None = None, kind: str | None = None, owner: str | None = None,
         status: str | None = None, at: dt.datetime | None = None) -> list[Entry]:
    """Entries matching every filter given, by name; expired ones are left out (a sweep deletes them)."""
    at = at or now()
    if status is not None and status not in rules.STATUSES:
        raise InputError(f"--status {status!r} is not a status", hint=f"use one of {', '.join(rules.STATUSES)}")
    # Table reads only (Rows.select), so the same code runs over SQL and Supabase's REST API: the
    # capability filter is a second read of its index table rather than a join.
    where: dict = {}
    if capability is not None:
        rules.check_capabilities([capability])
        where["name"] = [r["name"] for r in _select(store, "registry_capabilities", {"capability": capability},
                                                    columns="name")]
    if kind is not None:
        where["kind"] = rules.check_name(kind, "--kind")
    if owner is not None:
        where["owner"] = owner
    out = []
    for r in _select(store, "registry_entries", where, order="name"):
        e = _row(r, at)
        if not rules.expired(e, at) and (status is None or e.status == status):
            out.append(e)
    return out


def heartbeat(store, name: str, status: str = "pass", note: str = "", actor: str | None = None,
              at: dt.datetime | None = None) -> Entry:
    """Record a heartbeat (pass, warn or fail) now: one UPDATE. NotRegistered when there is no such
    entry (or it has been removed after deregister_after). With `actor` (the platform's own probe),
    a change of status is a row in the actions trail."""
    rules.check_name(name)
    check = rules.heartbeat_status(status)
    at = at or now()
    note = (note or "")[:500]
    if runs_functions(store):  # Postgres and Supabase: one call (elfctl_heartbeat), also over REST
        return _heartbeat_call(store, name, check, note, actor, at)
    if actor is None:
        n = _execute(store, "UPDATE registry_entries SET check_status = ?, note = ?, heartbeat_at = ?, "
                            "last_status = ? WHERE name = ?", (check, note, iso(at), check, name))
        if not n:
            raise _unknown(name)
        return Entry(name=name, check_status=check, note=note, heartbeat_at=iso(at), status=check, reason=note)
    with _tx(store) as tx:
        rows = _query(tx, _SELECT + " WHERE name = ?", (name,))
        if not rows:
            raise _unknown(name)
        before = rows[0]["last_status"]
        tx.execute("UPDATE registry_entries SET check_status = ?, note = ?, heartbeat_at = ?, last_status = ? "
                   "WHERE name = ?", (check, note, iso(at), check, name))
        e = _row({**rows[0], "check_status": check, "note": note, "heartbeat_at": iso(at)}, at)
        if before != check:
            _trail(tx, actor, e, f"status {before} -> {check}", note or "probe")
    return e


def _heartbeat_call(store, name: str, check: str, note: str, actor: str | None, at: dt.datetime) -> Entry:
    """heartbeat through database function elfctl_heartbeat: it updates the entry and returns it as
    it was, so a change of status is seen without a read before the write. The trail row follows
    the heartbeat's commit (inside the caller's transaction when it passes one)."""
    try:
        before = store.call("elfctl_heartbeat", {"p_name": name, "p_status": check, "p_note": note,
                                                 "p_at": iso(at)})
    except StoreNotMigrated:
        raise StoreNotMigrated("the store has no registry functions yet (migration 0110)",
                               hint="run `elfctl db migrate` (or `elfctl infra up`)") from None
    if before is None:
        raise _unknown(name)
    if actor is None:
        return Entry(name=name, check_status=check, note=note, heartbeat_at=iso(at), status=check, reason=note)
    e = _row({**before, "check_status": check, "note": note, "heartbeat_at": iso(at)}, at)
    if before["last_status"] != check:
        _trail(store, actor, e, f"status {before['last_status']} -> {check}", note or "probe")
    return e


def sweep(store, actor: str, at: dt.datetime | None = None,
          limit: int | None = None) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Delete the entries past deregister_after in critical, and note every entry whose computed status
    differs from the one last seen: each is a row in the actions trail. Returns (removed names,
    [(name, old, new)]). Idempotent: a second sweep at the same moment changes nothing. At most
    `limit` changes per call (the rest wait for the next sweep): a mass expiry never holds the write
    lock for long.

    Each change is conditional on the row as read (its heartbeat and last seen status): of two sweepers
    at once (two gateways, or a gateway and `registry sweep`) the second finds it already made and
    writes no second trail row; a heartbeat that arrived meanwhile wins over a stale verdict."""
    at = at or now()
    if runs_functions(store):
        return _sweep_by_calls(store, actor, at, limit)
    # Read outside any write transaction (SQLite's write lock is held only when there is a change to
    # make): the updates below are conditional, so what changed since the read is left alone.
    # Only these can change by themselves: an entry without TTL or deregister_after keeps the status
    # its last heartbeat gave it (and last_status already says so).
    todo = []
    for r in _query(store, _SELECT + " WHERE ttl_s IS NOT NULL OR deregister_after_s IS NOT NULL "
                                     "OR check_status <> last_status"):
        e = _row(r, at)
        if rules.expired(e, at) or e.status != r["last_status"]:
            todo.append((r, e))
            if limit is not None and len(todo) >= limit:
                break
    removed, changed = [], []
    if not todo:
        return removed, changed
    with _tx(store) as tx:
        for r, e in todo:
            same = (e.name, r["heartbeat_at"], r["check_status"], r["last_status"])
            if rules.expired(e, at):
                if not tx.execute("DELETE FROM registry_entries WHERE name = ? AND heartbeat_at = ? "
                                  "AND check_status = ? AND last_status = ?", same):
                    continue
                tx.execute("DELETE FROM registry_capabilities WHERE name = ?", (e.name,))
                _trail(tx, actor, e, f"critical for {e.deregister_after_s:g}s (deregister_after)", "deregistered",
                       strategy="deregister")
                removed.append(e.name)
            else:
                if not tx.execute("UPDATE registry_entries SET last_status = ? WHERE name = ? AND heartbeat_at = ? "
                                  "AND check_status = ? AND last_status = ?", (e.status, *same)):
                    continue
                _trail(tx, actor, e, f"status {r['last_status']} -> {e.status}", e.reason)
                changed.append((e.name, r["last_status"], e.status))
    return removed, changed


def _sweep_by_calls(store, actor: str, at: dt.datetime,
                    limit: int | None) -> tuple[list[str], list[tuple[str, str, str]]]:
    """`sweep` on Postgres and Supabase: the entries read with a select (REST filters are equality only:
    the sweep's condition is applied here), each change one call of elfctl_registry_sweep (0140),
    which applies it with its trail row only if the entry is still as read (no heartbeat nor other
    sweep in between)."""
    from elfctl.services.actions import trail

    removed, changed = [], []
    for r in _select(store, "registry_entries", {}):
        if limit is not None and len(removed) + len(changed) >= limit:
            break
        if r["ttl_s"] is None and r["deregister_after_s"] is None and r["check_status"] == r["last_status"]:
            continue
        e = _row(r, at)
        if rules.expired(e, at):
            status, action = None, _action(actor, e, f"critical for {e.deregister_after_s:g}s (deregister_after)",
                                           "deregistered", strategy="deregister")
        elif e.status != r["last_status"]:
            status, action = e.status, _action(actor, e, f"status {r['last_status']} -> {e.status}", e.reason)
        else:
            continue
        _, args = trail.prepared(action)
        if store.call("elfctl_registry_sweep", {"p_name": e.name, "p_seen_status": r["last_status"],
                                                "p_seen_heartbeat": r["heartbeat_at"], "p_status": status, **args}):
            if status is None:
                removed.append(e.name)
            else:
                changed.append((e.name, r["last_status"], e.status))
    return removed, changed


def graph(store, at: dt.datetime | None = None) -> dict[str, Entry]:
    return {e.name: e for e in find(store, at=at)}


def public(e: Entry) -> dict:
    """An entry as the gateway and `elfctl.registry` hand it to team code (the same dict both ways)."""
    return {"name": e.name, "kind": e.kind, "url": e.url, "endpoints": e.endpoints, "owner": e.owner,
            "lifecycle": e.lifecycle, "capabilities": list(e.capabilities), "depends_on": list(e.depends_on),
            "status": e.status, "reason": e.reason, "heartbeat_at": e.heartbeat_at,
            "metadata": {k: v for k, v in e.metadata.items() if k != "card"}}


def _action(actor: str, e: Entry, trigger: str, result: str, strategy: str = "update_registry"):
    # imported here: the trail brings the notify outbox (hmac, random, ...), which reads never need
    from elfctl.services.actions import trail

    return trail.Action("registry", trigger, strategy, result or "ok", actor,
                        team=e.name if e.kind == "team" else None, target=e.name)


def _trail(tx, actor: str, e: Entry, trigger: str, result: str, strategy: str = "update_registry") -> None:
    from elfctl.services.actions import trail

    trail.record(tx, _action(actor, e, trigger, result, strategy))


def _unknown(name: str) -> NotRegistered:
    return NotRegistered(f"registry: no entry {name!r}",
                         hint=f"register it first (`elfctl registry register {name} --url ...`), "
                              "or it was removed after its deregister_after")


def _execute(store, sql: str, params) -> int:
    try:
        return store.execute(sql, params)
    except StoreNotMigrated:
        raise StoreNotMigrated("the store has no registry yet (migration 0090)",
                               hint="run `elfctl db migrate` (or `elfctl infra up`)") from None


class _tx:
    """A transaction on a Store, or the caller's own when handed one (Tx has no transaction())."""

    def __init__(self, store):
        self.store, self.cm = store, None

    def __enter__(self):
        begin = getattr(self.store, "transaction", None)
        if begin is None:
            return self.store
        self.cm = begin()
        return self.cm.__enter__()

    def __exit__(self, *exc):
        return self.cm.__exit__(*exc) if self.cm is not None else False
