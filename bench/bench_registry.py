"""The registry with 10,000 entries: `elfctl registry list --capability X --json` from the CLI's own
start (beside `elfctl --version` in the same run: the floor of any command), a discovery call through
a real gateway process (beside its GET /health, the gateway's floor), and one heartbeat write on
SQLite and on Postgres (beside a `SELECT 1` on the same store).

Targets (issue 17): list < 100 ms; discovery p50 < 5 ms; heartbeat p50 < 5 ms on both stores.
"""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import PY, REPO, Row, drop_pg, fresh_pg, time_command

ENTRIES = int(os.environ.get("ELFCTL_BENCH_REGISTRY_ENTRIES", "10000"))
TAGS = 100  # each capability tag is on ~1% of the entries


def _log(msg: str) -> None:
    print(f"  registry: {msg}", file=sys.stderr, flush=True)


def _fill(store) -> None:
    from elfctl.domain.registry import Entry
    from elfctl.services.platform.migrate import migrate
    from elfctl.services.registry import entries as reg

    migrate(store, REPO / "migrations")
    with store.transaction() as tx:
        for i in range(ENTRIES):
            reg.register(tx, Entry(f"svc-{i:05d}", kind=("service", "mcp", "database")[i % 3],
                                   url=f"http://svc-{i}:8080", capabilities=(f"cap-{i % TAGS}", "common"),
                                   ttl_s=30 if i % 2 else None, owner=f"team-{i % 20}"))
        reg.register(tx, Entry("probe-target", url="http://p:1", ttl_s=3600))


def _p50(fn, n: int = 300, warmup: int = 30) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def _heartbeat_rows(store, label: str) -> list[Row]:
    from elfctl.services.registry import entries as reg

    beat = _p50(lambda: reg.heartbeat(store, "probe-target"))
    floor = _p50(lambda: store.query("SELECT 1 AS x"))
    return [Row("registry", f"heartbeat write p50 ({label})", beat, "ms", "SELECT 1 on the same store", floor,
                "< 5 ms", beat < 5.0)]


def _gateway_rows(project: Path, store_url: str, store) -> list[Row]:
    from tests.gateway.conftest import GatewayProcess

    from elfctl.services.gateway import keys

    key = keys.mint(store, "bench-team")
    gateway = GatewayProcess(project, store_url, "http://127.0.0.1:9/v1").start()  # no LLM call is made
    try:
        conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=5)
        auth = {"Authorization": f"Bearer {key}"}

        def get(path: str, headers: dict) -> None:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status

        found = _p50(lambda: get("/v1/registry?capability=cap-8&status=passing", auth))
        floor = _p50(lambda: get("/health", {}))
        conn.close()
    finally:
        gateway.stop()
    return [Row("registry", f"gateway discovery p50 ({ENTRIES:,} entries, {ENTRIES // TAGS} found)", found, "ms",
                "GET /health on the same gateway", floor, "< 5 ms", found < 5.0)]


def run(env: dict) -> list[Row]:
    from elfctl.adapters.postgres import PostgresStore
    from elfctl.adapters.sqlite import SqliteStore

    # What an installed wheel has: byte code on disk (this machine sets PYTHONDONTWRITEBYTECODE, so
    # otherwise every run would compile each module the command imports, ~100 ms).
    subprocess.run([PY, "-m", "compileall", "-q", str(REPO / "src" / "elfctl")], check=True, capture_output=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="elfctl-bench-registry-") as tmp:
        project = Path(tmp)
        (project / "elfctl.toml").write_text("")
        db = project / "reg.db"
        cli_env = {"ELFCTL_STORE_URL": f"sqlite:///{db}"}
        store = SqliteStore(db)
        _log(f"registering {ENTRIES:,} entries on SQLite")
        _fill(store)
        listed = time_command([PY, "-m", "elfctl", "registry", "list", "--capability", "cap-8", "--json"],
                              cwd=project, env=cli_env)
        floor = time_command([PY, "-m", "elfctl", "--version"], cwd=project, env=cli_env)
        rows.append(Row("registry", f"registry list --capability X ({ENTRIES:,} entries)", listed, "ms",
                        "elfctl --version", floor, "< 100 ms", listed < 100.0))
        rows += _gateway_rows(project, cli_env["ELFCTL_STORE_URL"], store)
        rows += _heartbeat_rows(store, "SQLite")
        store.close()
    dsn = env.get("ELFCTL_TEST_PG_DSN") or os.environ.get("ELFCTL_TEST_PG_DSN")
    if dsn:
        url, name = fresh_pg(dsn, "benchreg")
        try:
            pg = PostgresStore(url)
            _log(f"registering {ENTRIES:,} entries on Postgres")
            _fill(pg)
            rows += _heartbeat_rows(pg, "Postgres")
            pg.close()
        finally:
            drop_pg(dsn, name)
    return rows
