"""One `cost dashboard` refresh and one `cost predict` over 10 million usage rows, on SQLite and on
Postgres, beside a plain `SELECT count(*)` over the same rows in the same run.

The dashboard and the forecast read the daily rollup only, so their time should not grow with the
usage rows while count(*) does. Target: a refresh under 200 ms.

`ELFCTL_BENCH_ROWS` scales the data down (default 10,000,000). The SQLite file is cached in
/tmp/elfctl-bench-cache between runs (the Postgres server is fresh each `make bench`, so its data is
loaded with COPY every time).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

from bench.common import REPO, Row, drop_pg, fresh_pg, time_call

NOW = dt.datetime(2026, 3, 18, 15, 0, tzinfo=dt.UTC)  # fixed, so the cached file stays valid
DAYS = 180
TEAMS = 20
GEN_VERSION = 1  # bump when tests/usage_gen.py changes what it writes
CACHE = Path(os.environ.get("ELFCTL_BENCH_CACHE", "/tmp/elfctl-bench-cache"))
TARGET_MS = 200.0


def _log(msg: str) -> None:
    print(f"  cost_views: {msg}", file=sys.stderr, flush=True)


def _plan(rows: int):
    from tests import usage_gen as g

    return g.make_plan(g.default_teams(TEAMS), days=DAYS, now=NOW, seed=5, rows=rows)


def _fill(store, rows: int) -> tuple[int, float]:
    from tests import usage_gen as g

    from elfctl.services.platform.migrate import migrate

    migrate(store, REPO / "migrations")
    plan = _plan(rows)
    t0 = time.perf_counter()
    written = g.write(
        store, plan, progress=lambda n: _log(f"{store.dialect}: {n:,} rows") if n % 2_000_000 == 0 else None
    )
    g.write_budgets(store, plan)
    g.open_breaker(store, "gpt-4o")
    if store.dialect == "postgres":
        store.execute("ANALYZE", None)
    return written, time.perf_counter() - t0


def _sqlite_store(rows: int):
    from elfctl.adapters.sqlite import SqliteStore

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"usage-{rows}-v{GEN_VERSION}.db"
    ready = path.with_suffix(".ready")
    if path.exists() and ready.exists():
        return SqliteStore(path), None
    for p in (path, ready, path.with_suffix(".db-wal"), path.with_suffix(".db-shm")):
        p.unlink(missing_ok=True)
    store = SqliteStore(path)
    written, secs = _fill(store, rows)
    store.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    ready.write_text(f"{written}\n")
    return store, (written, secs)


def _postgres_store(dsn: str, rows: int):

    from elfctl.adapters.postgres import PostgresStore

    url, name = fresh_pg(dsn, "bench_cost")
    store = PostgresStore(url)
    written, secs = _fill(store, rows)
    return store, (written, secs), name


def _measure(store, label: str, rows: int, gen) -> list[Row]:
    from rich.console import Console

    from elfctl.cli.cost.dashboard import render
    from elfctl.services.cost.predict import predict
    from elfctl.services.cost.views import dashboard

    count = store.query("SELECT count(*) AS n FROM api_usage")[0]["n"]
    summary_rows = store.query("SELECT count(*) AS n FROM daily_cost_summary")[0]["n"]
    count_ms = time_call(lambda: store.query("SELECT count(*) AS n FROM api_usage"), repeat=5)
    null = Console(file=open(os.devnull, "w"), width=160)  # noqa: SIM115

    def refresh():
        null.print(render(dashboard(store, days=14, now=NOW)))

    refresh_ms = time_call(refresh, repeat=9)
    predict_ms = time_call(lambda: predict(store, horizon="month", now=NOW), repeat=3)
    extra = {"usage_rows": int(count), "summary_rows": int(summary_rows), "teams": TEAMS, "days": DAYS}
    if gen:
        extra.update(generated_rows=gen[0], generate_s=round(gen[1], 1), rows_per_s=int(gen[0] / gen[1]))
    else:
        extra["generate"] = "cached"
    base = f"SELECT count(*) over {int(count):,} rows"
    return [
        Row(
            "cost_views",
            f"dashboard refresh, {label} ({int(count):,} usage rows)",
            refresh_ms,
            "ms",
            base,
            count_ms,
            f"< {TARGET_MS:.0f} ms",
            refresh_ms < TARGET_MS,
            extra,
        ),
        Row(
            "cost_views",
            f"cost predict (month), {label}",
            predict_ms,
            "ms",
            base,
            count_ms,
            None,
            None,
            {"teams": TEAMS},
        ),
    ]


def run(env) -> list[Row]:
    rows = int(os.environ.get("ELFCTL_BENCH_ROWS", "10000000"))
    out: list[Row] = []
    _log(f"SQLite with {rows:,} rows (cached in {CACHE})")
    store, gen = _sqlite_store(rows)
    try:
        out += _measure(store, "SQLite", rows, gen)
    finally:
        store.close()
    dsn = env.get("ELFCTL_TEST_PG_DSN")
    if dsn:
        _log(f"Postgres with {rows:,} rows (COPY)")
        store, gen, name = _postgres_store(dsn, rows)
        try:
            out += _measure(store, "Postgres", rows, gen)
        finally:
            store.close()
            drop_pg(dsn, name)
    return out
