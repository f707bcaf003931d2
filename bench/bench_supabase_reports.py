"""`cost dashboard` refresh over Supabase's REST API on 1M usage rows, beside the same refresh on the
same database reached directly (PostgresStore), in the same run.

The refresh is one `rpc('elfctl_dashboard')` (migration 0120): the aggregation runs in the
database, so what crosses HTTP is a few hundred grouped rows whatever the number of calls. The REST
side is tests/postgrest_server.py (the PostgREST-compatible test server, in this process, over the
same Postgres), through the official supabase client, as elfctl's RestStore uses it. Goal: < 300 ms.

`ELFCTL_BENCH_SUPABASE_ROWS` changes the row count (default 1,000,000). The data is seeded with
bench_cost_views' bulk loader (tests/usage_gen.py, COPY) into a database shaped like a Supabase
project's (tests/supabase_db.py: its API roles and default grants).
"""

from __future__ import annotations

import os
import secrets
import sys

from bench.bench_cost_views import NOW, _fill
from bench.common import Row, drop_pg, fresh_pg, time_call

TARGET_MS = 300.0


def _log(msg: str) -> None:
    print(f"  supabase_reports: {msg}", file=sys.stderr, flush=True)


def run(env) -> list[Row]:
    from rich.console import Console
    from tests.postgrest_server import PostgrestServer
    from tests.supabase_db import supabase_database

    from elfctl.adapters.postgres import PostgresStore
    from elfctl.adapters.supabase_rest import RestStore
    from elfctl.cli.cost.dashboard import render
    from elfctl.services.cost.views import dashboard

    dsn = env.get("ELFCTL_TEST_PG_DSN")
    if not dsn:
        raise RuntimeError("no PostgreSQL (ELFCTL_TEST_PG_DSN)")
    rows = int(os.environ.get("ELFCTL_BENCH_SUPABASE_ROWS", "1000000"))
    url, name = fresh_pg(dsn, "bench_supa")
    direct = server = rest = None
    try:
        supabase_database(url, migrated=False)  # roles and default grants first, as on a project
        direct = PostgresStore(url)
        _log(f"seeding {rows:,} usage rows (COPY)")
        written, secs = _fill(direct, rows)
        server = PostgrestServer(url, service_key="svc-" + secrets.token_hex(16),
                                 anon_key="anon-" + secrets.token_hex(16)).start()
        key = next(k for k, r in server.keys.items() if r == "service_role")
        rest = RestStore(server.url, key)
        null = Console(file=open(os.devnull, "w"), width=160)  # noqa: SIM115

        def refresh(store):
            null.print(render(dashboard(store, days=14, now=NOW)))

        assert dashboard(rest, now=NOW) == dashboard(direct, now=NOW)  # the same figures both ways
        direct_ms = time_call(lambda: refresh(direct), repeat=9)
        rest_ms = time_call(lambda: refresh(rest), repeat=9)
        server.requests.clear()
        refresh(rest)
        per_refresh = [r["path"] for r in server.requests]
        count = direct.query("SELECT count(*) AS n FROM api_usage")[0]["n"]
        summary = direct.query("SELECT count(*) AS n FROM daily_cost_summary")[0]["n"]
        extra = {"usage_rows": int(count), "summary_rows": int(summary), "generate_s": round(secs, 1),
                 "requests_per_refresh": len(per_refresh), "paths": sorted(set(per_refresh))}
        return [Row("supabase_reports", f"dashboard refresh over REST ({int(count):,} usage rows)", rest_ms, "ms",
                    "the same refresh, Postgres direct", direct_ms, f"< {TARGET_MS:.0f} ms", rest_ms < TARGET_MS,
                    extra)]
    finally:
        for closing in (rest, server and server.stop, direct):
            if closing is not None:
                (closing if callable(closing) else closing.close)()
        drop_pg(dsn, name)
