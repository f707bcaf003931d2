"""`cost reconcile` (recompute rollups and counters from the ledger, report drift) and `cost reprice`
(apply a price correction to usage rows, moving the rollups and counters by the exact difference)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from elfctl.domain import budget as bmod
from elfctl.domain.pricing import PriceBook, Tokens
from elfctl.domain.usage import parse_iso
from elfctl.ports import Store
from elfctl.services.cost import budgets, import_batches, ledger

_SUM_COLS = ledger.SUMMARY_COLS


@dataclass
class Drift:
    table: str
    key: str
    column: str
    stored: int
    computed: int


@dataclass
class ReconcileResult:
    rows_checked: int = 0
    expired_released: int = 0
    imports_undone: list[str] = field(default_factory=list)  # strict imports whose process died
    drift: list[Drift] = field(default_factory=list)
    fixed: bool = False

    @property
    def ok(self) -> bool:
        return not self.drift


def _expected_summary(store: Store) -> dict[tuple, dict]:
    rows = store.query(
        "SELECT day, team, model, COUNT(*) AS calls, "
        "SUM(CASE WHEN outcome <> 'ok' THEN 1 ELSE 0 END) AS errors, "
        "SUM(CASE WHEN fallback_reason IS NOT NULL AND fallback_reason <> '' THEN 1 ELSE 0 END) "
        "AS fallbacks, "
        "SUM(CASE WHEN priced = 0 THEN 1 ELSE 0 END) AS unpriced, SUM(prompt_tokens) AS prompt_tokens, "
        "SUM(completion_tokens) AS completion_tokens, SUM(cached_tokens) AS cached_tokens, "
        "SUM(cost_nanousd) AS cost_nanousd FROM api_usage GROUP BY day, team, model"
    )
    return {(r["day"], r["team"], r["model"]): {c: int(r[c] or 0) for c in _SUM_COLS} for r in rows}


def _expected_counters(store: Store) -> dict[tuple, list[int]]:
    tz = {r["team"]: r["timezone"] for r in store.query("SELECT team, timezone FROM budgets")}
    out: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    # Per (team, UTC minute) first, so the scan returns few rows even for millions of calls (and
    # minutes still split correctly for zones offset by :30 or :45).
    for r in store.query(
        "SELECT team, substr(ts, 1, 16) AS minute, SUM(cost_nanousd) AS s FROM api_usage "
        "WHERE cost_nanousd <> 0 GROUP BY team, substr(ts, 1, 16)"
    ):
        t = parse_iso(r["minute"] + ":00+00:00")
        for kind in bmod.WINDOWS:
            out[(r["team"], kind, bmod.window_start(kind, t, tz.get(r["team"], "UTC")))][0] += int(r["s"])
    for r in store.query("SELECT team, day_start, month_start, amount_nanousd FROM budget_reservations"):
        out[(r["team"], "day", r["day_start"])][1] += int(r["amount_nanousd"])
        out[(r["team"], "month", r["month_start"])][1] += int(r["amount_nanousd"])
    return out


def reconcile(store: Store, fix: bool = False) -> ReconcileResult:
    res = ReconcileResult()
    res.imports_undone = import_batches.recover(store)
    with store.transaction() as tx:
        res.expired_released = budgets.expire_in(tx, budgets.now_utc())
    res.rows_checked = int(store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"])
    want = _expected_summary(store)
    have = {
        (r["day"], r["team"], r["model"]): {c: int(r[c]) for c in _SUM_COLS}
        for r in store.query("SELECT * FROM daily_cost_summary")
    }
    for key in sorted(set(want) | set(have)):
        w, h = want.get(key, dict.fromkeys(_SUM_COLS, 0)), have.get(key, dict.fromkeys(_SUM_COLS, 0))
        for c in _SUM_COLS:
            if w[c] != h[c]:
                res.drift.append(Drift("daily_cost_summary", "/".join(key), c, h[c], w[c]))
    want_c = _expected_counters(store)
    have_c = {
        (r["team"], r["window_kind"], r["window_start"]): [
            int(r["spent_nanousd"]),
            int(r["reserved_nanousd"]),
        ]
        for r in store.query("SELECT * FROM spend_counters")
    }
    for key in sorted(set(want_c) | set(have_c)):
        w, h = want_c.get(key, [0, 0]), have_c.get(key, [0, 0])
        for i, c in enumerate(("spent_nanousd", "reserved_nanousd")):
            if w[i] != h[i]:
                res.drift.append(Drift("spend_counters", "/".join(key), c, h[i], w[i]))
    if fix and res.drift:
        with store.transaction() as tx:
            tx.execute("DELETE FROM daily_cost_summary")
            tx.executemany(ledger.SUMMARY_UPSERT, [(*k, *(v[c] for c in _SUM_COLS)) for k, v in want.items()])
            tx.execute("DELETE FROM spend_counters")
            tx.executemany(
                "INSERT INTO spend_counters (team, window_kind, window_start, spent_nanousd, "
                "reserved_nanousd) VALUES (?,?,?,?,?)",
                [(*k, *v) for k, v in want_c.items()],
            )
        res.fixed = True
    return res


@dataclass
class RepriceResult:
    since: str
    price_version: str
    rows_changed: int = 0
    delta_nanousd: int = 0
    still_unpriced: int = 0
    dry_run: bool = False


def reprice(
    store: Store, prices: PriceBook, since: str, dry_run: bool = False, batch: int = 2000
) -> RepriceResult:
    """Re-cost rows from `since` (a day) priced with another price version, or unpriced, from their
    token counts. Rollups and counters move by the exact per-row differences in the same transaction."""
    from elfctl.services.cost.report import _day

    since = _day(since, "--since")
    res = RepriceResult(since, prices.version, dry_run=dry_run)
    with store.transaction() as tx:
        rows = tx.query(
            "SELECT id, ts, day, team, model, prompt_tokens, completion_tokens, cached_tokens, "
            "cache_write_tokens, reasoning_tokens, cost_nanousd, priced FROM api_usage "
            "WHERE day >= ? AND outcome = 'ok' AND source NOT LIKE 'import:%' AND "
            "(price_version IS NULL OR price_version <> ? OR priced = 0)",
            (since, prices.version),
        )
        tz = ledger.timezones(tx, {r["team"] for r in rows})
        updates, summary, counters = [], defaultdict(lambda: [0, 0]), defaultdict(int)
        for r in rows:
            cost = prices.cost(
                r["model"],
                Tokens(
                    r["prompt_tokens"],
                    r["completion_tokens"],
                    r["cached_tokens"],
                    r["cache_write_tokens"],
                    r["reasoning_tokens"],
                ),
            )
            if cost is None:
                res.still_unpriced += 1
                continue
            delta = cost - int(r["cost_nanousd"])
            was_unpriced = int(r["priced"]) == 0
            updates.append((cost, prices.version, r["id"]))
            res.rows_changed += 1
            res.delta_nanousd += delta
            s = summary[(r["day"], r["team"], r["model"])]
            s[0] += delta
            s[1] += was_unpriced
            if delta:
                t = parse_iso(r["ts"])
                for kind in bmod.WINDOWS:
                    counters[(r["team"], kind, bmod.window_start(kind, t, tz.get(r["team"], "UTC")))] += delta
        if dry_run:
            return res
        for i in range(0, len(updates), batch):
            tx.executemany(
                "UPDATE api_usage SET cost_nanousd = ?, priced = 1, price_version = ? WHERE id = ?",
                updates[i : i + batch],
            )
        tx.executemany(
            "UPDATE daily_cost_summary SET cost_nanousd = cost_nanousd + ?, unpriced = unpriced - ? "
            "WHERE day = ? AND team = ? AND model = ?",
            [(d, u, *k) for k, (d, u) in summary.items()],
        )
        tx.executemany(ledger.COUNTER_UPSERT, [(*k, d) for k, d in counters.items()])
    return res
