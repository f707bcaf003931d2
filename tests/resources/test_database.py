"""database on a real, throw-away PostgreSQL server (not the shared one): connections against
max_connections while it runs; stopped, the store is critical for a new process and for one that
was connected before, quickly and without a traceback; `--apply` says plainly that opening the
breaker failed (it lives in the store that is down); started again, healthy."""

from __future__ import annotations

import json
import subprocess
import time

from tests import realservices
from tests.cli.test_store_outage import throwaway_pg  # noqa: F401 (fixture)
from tests.conftest import run_elfctl

QUIET = {"ELFCTL_RESOURCES_CPU_WARNING": "1000", "ELFCTL_RESOURCES_CPU_CRITICAL": "1000",
         "ELFCTL_RESOURCES_TIMEOUT_S": "20"}


def _start_again(data, dsn):
    port = dsn.rsplit(":", 1)[1].split("/")[0]
    opts = f"-p {port} -k {data.parent} -c listen_addresses=127.0.0.1 -c max_connections=200"
    subprocess.run(realservices._as_postgres_user() + [str(realservices.PG_BIN / "pg_ctl"), "-D", str(data), "-o",
                                                       opts, "-l", str(data.parent / "log"), "-w", "start"],
                   check=True, capture_output=True)


def _database(project, env, *flags):
    proc = run_elfctl("resources", "--json", *flags, cwd=project, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc, json.loads(proc.stdout)


def test_postgres_stopped_is_critical_then_healthy_again(project, throwaway_pg, monkeypatch):  # noqa: F811
    dsn, data = throwaway_pg
    for var, value in QUIET.items():  # for the in-process reads too
        monkeypatch.setenv(var, value)
    env = {**QUIET, "ELFCTL_STORE_URL": dsn}
    assert run_elfctl("db", "migrate", cwd=project, env=env).returncode == 0

    proc, doc = _database(project, env)
    db = doc["resources"]["database"]
    assert db["status"] == "healthy", db
    conns = next(r for r in db["readings"] if r["subject"] == "connections")
    assert "of max_connections 200 in use" in conns["detail"] and 0 < conns["value"] < 10, conns

    from elfctl.app import App
    from elfctl.output import Output
    from elfctl.services.resources.app import snapshot

    long_lived = App(Output(quiet=True), cwd=project, overrides={"store.url": dsn})
    try:
        first = snapshot(long_lived).type("database")
        assert first.status == "healthy", first
        realservices.stop_postgres(data)

        t0 = time.monotonic()
        proc, doc = _database(project, env, "--apply")
        took = time.monotonic() - t0
        db = doc["resources"]["database"]
        assert proc.returncode == 1 and db["status"] == "critical", db
        assert db["readings"][0]["detail"].startswith("store not answering:"), db
        assert "database" in doc["error"]["message"] and doc["error"]["code"] == "failed"
        breaks = [s for s in doc["policy"] if s["strategy"] == "circuit_break"]
        assert [(s["target"], s["result"][:7]) for s in breaks] == [("resource:database", "failed:")], doc["policy"]
        assert took < 15, took  # refused at once, not a hang (generous for a loaded host)

        again = snapshot(long_lived)  # a process connected before the stop
        assert again.type("database").status == "critical", again.type("database")

        _start_again(data, dsn)
        proc, doc = _database(project, env)
        assert doc["resources"]["database"]["status"] == "healthy", doc["resources"]["database"]
    finally:
        long_lived.close()
