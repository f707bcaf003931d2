"""The usage ledger: record LLM calls, keep `daily_cost_summary` and the spend counters current.

Recording is idempotent by request id: `INSERT ... ON CONFLICT (request_id) DO NOTHING RETURNING`
tells which rows are new, and only those move the rollup and the counters, all in the same
transaction. A reservation named by a row is settled (deleted, its amount taken off `reserved`) in
that transaction too, so spend and reservations never drift apart.
On stores that run database functions (Postgres, Supabase over REST) recording and settling are one
call each (`elfctl_record_usage`, `elfctl_settle`, migration 0110); the SQL here is SQLite's (and
the strict import's removal, which runs only through a database connection).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from elfctl.domain import budget as bmod
from elfctl.domain.usage import COLUMNS, COUNTERS, UsageRow, parse_iso, values
from elfctl.ports import Store, Tx, runs_functions

SUMMARY_COLS = COUNTERS  # daily_cost_summary's additive columns, in table order

SUMMARY_UPSERT = (
    "INSERT INTO daily_cost_summary (day, team, model, calls, errors, fallbacks, unpriced, prompt_tokens, "
    "completion_tokens, cached_tokens, cost_nanousd) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (day, team, model) DO UPDATE SET calls = daily_cost_summary.calls + excluded.calls, "
    "errors = daily_cost_summary.errors + excluded.errors, "
    "fallbacks = daily_cost_summary.fallbacks + excluded.fallbacks, "
    "unpriced = daily_cost_summary.unpriced + excluded.unpriced, "
    "prompt_tokens = daily_cost_summary.prompt_tokens + excluded.prompt_tokens, "
    "completion_tokens = daily_cost_summary.completion_tokens + excluded.completion_tokens, "
    "cached_tokens = daily_cost_summary.cached_tokens + excluded.cached_tokens, "
    "cost_nanousd = daily_cost_summary.cost_nanousd + excluded.cost_nanousd"
)
COUNTER_UPSERT = (
    "INSERT INTO spend_counters (team, window_kind, window_start, spent_nanousd) VALUES (?,?,?,?) "
    "ON CONFLICT (team, window_kind, window_start) DO UPDATE SET "
    "spent_nanousd = spend_counters.spent_nanousd + excluded.spent_nanousd"
)


def record(store: Store, rows: Sequence[UsageRow]) -> int:
    """Record rows (and settle their reservations) in one transaction. Returns how many were new."""
    if not rows:
        return 0
    if runs_functions(store):  # one call is one transaction (and the only way over REST)
        return record_in(store, rows)
    with store.transaction() as tx:
        return record_in(tx, rows)


def record_in(tx: Tx, rows: Sequence[UsageRow], import_id: str | None = None) -> int:
    """`record` inside a transaction; `import_id` tags the new rows with the strict import that
    brings them (so it can be undone)."""
    seen: set[str] = set()
    unique = []
    for r in rows:  # a batch naming one request twice counts it once
        if r.request_id not in seen:
            seen.add(r.request_id)
            unique.append(r)
    if runs_functions(tx):  # Postgres and Supabase: database function elfctl_record_usage, the same steps
        return int(tx.call("elfctl_record_usage", {"p_rows": [_row_json(r) for r in unique],
                                                   "p_import_id": import_id}))
    cols, tag = (COLUMNS, ()) if import_id is None else ((*COLUMNS, "import_id"), (import_id,))
    got = insert_rows(tx, "api_usage", cols, [(*values(r), *tag) for r in unique],
                      "ON CONFLICT (request_id) DO NOTHING RETURNING request_id")
    new = {x["request_id"] for x in got}
    fresh = [r for r in unique if r.request_id in new]
    if fresh:
        rollup_in(tx, fresh)
    # After the rollup: every writer locks summary rows, then counters, each in key order (as a
    # reservation does: day, then month), so concurrent batches on Postgres never deadlock.
    settle_in(tx, [r.reservation_id for r in unique if r.reservation_id])
    return len(fresh)


# Postgres: one array per column through unnest(), so a 2000-row batch is one short statement
# (a 40,000-placeholder VALUES list spends most of its time in the driver's query parser).
PG_CHUNK = 2000
_PG_TYPES = {
    "prompt_tokens": "bigint",
    "completion_tokens": "bigint",
    "cached_tokens": "bigint",
    "cache_write_tokens": "bigint",
    "reasoning_tokens": "bigint",
    "cost_nanousd": "bigint",
    "priced": "int",
    "latency_ms": "int",
    "revision": "int",
    "seq": "bigint",
}


def insert_rows(tx: Tx, table: str, cols: Sequence[str], rows: Sequence[tuple], suffix: str = "") -> list[dict]:
    """A multi-row INSERT of `rows` (tuples in `cols` order) in chunks; `suffix` is the ON CONFLICT /
    RETURNING clause. Returns the rows RETURNING gave."""
    out: list[dict] = []
    if getattr(tx, "dialect", "") == "postgres":
        arrays = ", ".join(f"?::{_PG_TYPES.get(c, 'text')}[]" for c in cols)
        sql = f"INSERT INTO {table} ({', '.join(cols)}) SELECT * FROM unnest({arrays}) {suffix}"
        for i in range(0, len(rows), PG_CHUNK):
            arrays_in = [list(c) for c in zip(*rows[i : i + PG_CHUNK], strict=True)]
            if "RETURNING" in suffix:
                out.extend(tx.query(sql, arrays_in))
            else:
                tx.execute(sql, arrays_in)
        return out
    one = "(" + ",".join("?" * len(cols)) + ")"
    chunk_rows = max(1, 9000 // len(cols))  # well under SQLite's 32766 variables
    for i in range(0, len(rows), chunk_rows):
        chunk = rows[i : i + chunk_rows]
        sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES {','.join([one] * len(chunk))} {suffix}"
        params = [v for r in chunk for v in r]
        if "RETURNING" in suffix:
            out.extend(tx.query(sql, params))
        else:
            tx.execute(sql, params)
    return out


def rollup_in(tx: Tx, rows: list[UsageRow], sign: int = 1) -> list[tuple]:
    """Add rows to daily_cost_summary and the spend counters (sign=-1: take them off). Returns the
    keys (team, window_kind, window_start) of the counters moved."""
    summary: dict[tuple, list[int]] = defaultdict(lambda: [0] * 8)
    for r in rows:
        s = summary[(r.day, r.team, r.model)]
        s[0] += 1
        s[1] += r.outcome != "ok"
        s[2] += bool(r.fallback_reason)
        s[3] += not r.priced
        s[4] += r.prompt_tokens
        s[5] += r.completion_tokens
        s[6] += r.cached_tokens
        s[7] += r.cost_nanousd
    tx.executemany(SUMMARY_UPSERT, [(*k, *(sign * x for x in v)) for k, v in sorted(summary.items())])
    tz = timezones(tx, {r.team for r in rows})
    counters: dict[tuple, int] = defaultdict(int)
    for r in rows:
        if not r.cost_nanousd:
            continue
        t = parse_iso(r.ts)
        for kind in bmod.WINDOWS:
            counters[(r.team, kind, bmod.window_start(kind, t, tz.get(r.team, "UTC")))] += sign * r.cost_nanousd
    if counters:
        tx.executemany(COUNTER_UPSERT, [(*k, v) for k, v in sorted(counters.items())])
    return sorted(counters)


def timezones(tx: Tx, teams: Iterable[str]) -> dict[str, str]:
    teams = list(teams)
    if not teams:
        return {}
    rows = tx.query(f"SELECT team, timezone FROM budgets WHERE team IN ({','.join('?' * len(teams))})", teams)
    return {r["team"]: r["timezone"] for r in rows}


def _row_json(r: UsageRow) -> dict:
    """A usage row as elfctl_record_usage takes it: api_usage's columns, and the reservation it settles."""
    return {**dict(zip(COLUMNS, values(r), strict=True)), "reservation_id": r.reservation_id}


def settle_in(tx: Tx, reservation_ids: list[str]) -> None:
    """Delete the reservations (if still there: an expired one was released already) and take their
    amounts off the counters they were added to."""
    if runs_functions(tx):  # Postgres and Supabase: database function elfctl_settle, the same steps
        if reservation_ids:
            tx.call("elfctl_settle", {"p_ids": list(reservation_ids)})
        return
    for rid in reservation_ids:
        got = tx.query(
            "DELETE FROM budget_reservations WHERE id = ? RETURNING team, amount_nanousd, day_start, "
            "month_start",
            (rid,),
        )
        for g in got:
            unreserve(tx, g)


def unreserve(tx: Tx, g: dict) -> None:
    for kind, start in (("day", g["day_start"]), ("month", g["month_start"])):
        tx.execute(
            "UPDATE spend_counters SET reserved_nanousd = reserved_nanousd - ? "
            "WHERE team = ? AND window_kind = ? AND window_start = ?",
            (g["amount_nanousd"], g["team"], kind, start),
        )


# --- a strict import's rows (migration 0062): recorded in batches, removed by import id on failure --
_ROLLUP_COLS = ("request_id", "ts", "team", "requested_model", "model", "outcome", "fallback_reason", "priced",
                "prompt_tokens", "completion_tokens", "cached_tokens", "cost_nanousd")


def remove_import_in(tx: Tx, import_id: str, limit: int) -> int:
    """Delete up to `limit` rows an import recorded, taking them off the rollups and counters (rows
    of those left at zero go). Returns how many were deleted."""
    got = tx.query(
        "DELETE FROM api_usage WHERE id IN (SELECT id FROM api_usage WHERE import_id = ? LIMIT ?) "
        f"RETURNING {', '.join(_ROLLUP_COLS)}",
        (import_id, limit),
    )
    if got:
        rows = [UsageRow(**r) for r in got]
        counters = rollup_in(tx, rows, sign=-1)
        tx.executemany("DELETE FROM daily_cost_summary WHERE day = ? AND team = ? AND model = ? AND calls = 0",
                       sorted({(r.day, r.team, r.model) for r in rows}))
        # A counter with nothing spent or reserved is what no row at all means (a reservation
        # rebuilds a missing one from the ledger).
        tx.executemany("DELETE FROM spend_counters WHERE team = ? AND window_kind = ? AND window_start = ? "
                       "AND spent_nanousd = 0 AND reserved_nanousd = 0", counters)
    return len(got)
