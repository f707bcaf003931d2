"""`elfctl db migrate` on an empty SQLite and an empty PostgreSQL store."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import PY, Row, fresh_pg, time_command


def run(env) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1000))

        def sqlite_url():
            return f"sqlite:///{Path(tmp) / f'm{next(counter)}.db'}"

        # A fresh empty store per sample: each run applies every migration.
        import os
        import statistics
        import subprocess
        import time

        def sample(url_factory, n=5):
            times = []
            for _ in range(n):
                url = url_factory()
                t0 = time.perf_counter()
                subprocess.run([PY, "-m", "elfctl", "db", "migrate"], cwd=tmp, check=True,
                               env={**os.environ, "ELFCTL_STORE_URL": url}, capture_output=True)
                times.append((time.perf_counter() - t0) * 1000)
            return statistics.median(times)

        status_base = time_command([PY, "-m", "elfctl", "--version"], repeat=5, cwd=tmp)
        rows.append(Row("migrate", "db migrate (empty SQLite)", sample(sqlite_url), "ms",
                        "elfctl --version", status_base))
        dsn = env.get("ELFCTL_TEST_PG_DSN")
        if dsn:
            rows.append(Row("migrate", "db migrate (empty Postgres)", sample(lambda: fresh_pg(dsn)[0]), "ms",
                            "elfctl --version", status_base))
    return rows
