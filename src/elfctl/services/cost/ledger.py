"""The usage ledger: record LLM calls, keep `daily_cost_summary` and the spend counters current.

Recording is idempotent by request id: `INSERT ... ON CONFLICT (request_id) DO NOTHING RETURNING`
tells which rows are new, and only those move the rollup and the counters, all in the same
transaction. A reservation named by a row is settled (deleted, its amount taken off `reserved`) in
that transaction too, so spend and reservations never drift apart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from elfctl.domain import budget as bmod
from elfctl.domain.usage import COLUMNS, COUNTERS, UsageRow, parse_iso, values
from elfctl.ports import Store, Tx

SUMMARY_COLS = COUNTERS  # daily_cost_summary's additive columns, in table order
CHUNK = 400  # rows per multi-row INSERT (20 columns: well under SQLite's 32766 variables)

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
    with store.transaction() as tx:
        return record_in(tx, rows)


def record_in(tx: Tx, rows: Sequence[UsageRow]) -> int:
    seen: set[str] = set()
    unique = []
    for r in rows:  # a batch naming one request twice counts it once
        if r.request_id not in seen:
            seen.add(r.request_id)
            unique.append(r)
    new: set[str] = set()
    if getattr(tx, "dialect", "") == "postgres":
        for i in range(0, len(unique), PG_CHUNK):
            new.update(_insert_pg(tx, unique[i : i + PG_CHUNK]))
    else:
        cols = ", ".join(COLUMNS)
        one = "(" + ",".join("?" * len(COLUMNS)) + ")"
        for i in range(0, len(unique), CHUNK):
            chunk = unique[i : i + CHUNK]
            sql = (
                f"INSERT INTO api_usage ({cols}) VALUES {','.join([one] * len(chunk))} "
                "ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
            )
            params = [v for r in chunk for v in values(r)]
            new.update(x["request_id"] for x in tx.query(sql, params))
    fresh = [r for r in unique if r.request_id in new]
    settle_in(tx, [r.reservation_id for r in unique if r.reservation_id])
    if fresh:
        _rollup(tx, fresh)
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
}


def _insert_pg(tx: Tx, chunk: list[UsageRow]) -> list[str]:
    cols = list(zip(*(values(r) for r in chunk), strict=True))
    arrays = ", ".join(f"?::{_PG_TYPES.get(c, 'text')}[]" for c in COLUMNS)
    sql = (
        f"INSERT INTO api_usage ({', '.join(COLUMNS)}) SELECT * FROM unnest({arrays}) "
        "ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
    )
    return [x["request_id"] for x in tx.query(sql, [list(c) for c in cols])]


def _rollup(tx: Tx, rows: list[UsageRow]) -> None:
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
    tx.executemany(SUMMARY_UPSERT, [(*k, *v) for k, v in summary.items()])
    tz = timezones(tx, {r.team for r in rows})
    counters: dict[tuple, int] = defaultdict(int)
    for r in rows:
        if not r.cost_nanousd:
            continue
        t = parse_iso(r.ts)
        for kind in bmod.WINDOWS:
            counters[(r.team, kind, bmod.window_start(kind, t, tz.get(r.team, "UTC")))] += r.cost_nanousd
    if counters:
        tx.executemany(COUNTER_UPSERT, [(*k, v) for k, v in counters.items()])


def timezones(tx: Tx, teams: Iterable[str]) -> dict[str, str]:
    teams = list(teams)
    if not teams:
        return {}
    rows = tx.query(f"SELECT team, timezone FROM budgets WHERE team IN ({','.join('?' * len(teams))})", teams)
    return {r["team"]: r["timezone"] for r in rows}


def settle_in(tx: Tx, reservation_ids: list[str]) -> None:
    """Delete the reservations (if still there: an expired one was released already) and take their
    amounts off the counters they were added to."""
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
