"""Happy-path overhead of `@retry` + `@circuit_breaker` on a trivial function, against the same
function undecorated, in the same run (goal: < 20 us per call).

A closed circuit with no failures counted is read from the store at most once per breaker.FRESH_S
(1 s) per process and a success writes nothing, so the figure is the decorators' Python work plus
one store read per second amortised over the calls; on Postgres that read is a network round trip.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import Row

CALLS = 20_000
ROUNDS = 7


def _per_call_us(fn, calls: int = CALLS, rounds: int = ROUNDS) -> float:
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        for i in range(calls):
            fn(i)
        samples.append((time.perf_counter() - t) * 1e6 / calls)
    return statistics.median(samples)


def _store(url: str | None, folder: Path):
    from elfctl import config
    from elfctl.bootstrap import migrations_dir, open_store
    from elfctl.services.platform import migrate
    from elfctl.services.platform.project import init

    init(folder)
    cfg = config.load(cwd=folder)
    store = open_store(cfg, url)
    migrate.migrate(store, migrations_dir(cfg))
    return cfg, store


def measure(url: str | None, label: str) -> list[Row]:
    import asyncio

    from elfctl import resilience
    from elfctl.resilience import circuit_breaker, retry

    with tempfile.TemporaryDirectory() as tmp:
        cfg, store = _store(url, Path(tmp))
        resilience.use_store(store, cfg)
        try:
            def plain(x):
                return x + 1

            guarded = retry("standard")(circuit_breaker("bench", store=store)(plain))
            guarded(0)  # builds the breaker (its row) and the policy once
            base = _per_call_us(plain)
            both = _per_call_us(guarded)
            rows = [Row("resilience", f"@retry + @circuit_breaker, happy path ({label})", both - base, "us/call",
                        baseline="undecorated call", baseline_value=base, target="< 20 us/call overhead",
                        ok=both - base < 20, extra={"decorated_us": both})]

            async def aplain(x):
                return x + 1

            aguarded = retry("standard")(circuit_breaker("bench-async", store=store)(aplain))

            async def loop(fn, n):
                t = time.perf_counter()
                for i in range(n):
                    await fn(i)
                return (time.perf_counter() - t) * 1e6 / n

            async def main():
                await aguarded(0)
                b = statistics.median([await loop(aplain, CALLS // 10) for _ in range(ROUNDS)])
                d = statistics.median([await loop(aguarded, CALLS // 10) for _ in range(ROUNDS)])
                return b, d

            b, d = asyncio.run(main())
            # async: the store is read on a worker thread (never on the event loop), once per FRESH_S;
            # between those reads a clean circuit costs no thread hand-off.
            rows.append(Row("resilience", f"async @retry + @circuit_breaker, happy path ({label})", d - b, "us/call",
                            baseline="undecorated coroutine", baseline_value=b, target="< 20 us/call overhead",
                            ok=d - b < 20, extra={"decorated_us": d}))
            return rows
        finally:
            resilience.reset()
            store.close()


def run(env) -> list[Row]:
    rows = measure(None, "SQLite store")
    dsn = env.get("ELFCTL_TEST_PG_DSN") or os.environ.get("ELFCTL_TEST_PG_DSN")
    if dsn:
        import uuid

        import psycopg

        name = "bench_res_" + uuid.uuid4().hex[:8]
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            rows += measure(dsn.rsplit("/", 1)[0] + "/" + name, "Postgres store")
        finally:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return rows


if __name__ == "__main__":
    for r in run(dict(os.environ)):
        print(f"{r.name}: {r.value:.2f} {r.unit} (baseline {r.baseline_value:.3f} us, ok={r.ok})")
