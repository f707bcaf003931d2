"""A real PostgreSQL server (a throw-away one, not the shared test server) stopped and started again:
the database policy retries across the outage, and a breaker opened while it is down is seen by a
second process, then closes once the server answers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from tests import realservices


@pytest.fixture
def throwaway_pg():
    import shutil

    try:
        dsn, data = realservices.start_postgres()  # its own folder under /tmp, readable by postgres
    except Exception as exc:  # noqa: BLE001
        from tests.conftest import unavailable

        unavailable(f"cannot start PostgreSQL: {exc}")
    state = {"dsn": dsn, "data": data}
    yield state
    realservices.stop_postgres(data)
    shutil.rmtree(data.parent, ignore_errors=True)


def _start_again(data):
    opts = subprocess.run(["cat", str(data / "postmaster.opts")], capture_output=True, text=True).stdout
    assert opts, "no postmaster.opts: the server never ran"
    # pg_ctl restarts with the options it was last started with (port, socket folder, settings)
    r = subprocess.run(realservices._as_postgres_user() + [str(realservices.PG_BIN / "pg_ctl"), "-D", str(data),
                       "-l", str(data.parent / "log2"), "-w", "-t", "30", "start", "-o",
                       opts.split(" ", 1)[1].replace('"', "").replace(f"-D {data}", "").strip()],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _select_one(dsn):
    import psycopg

    with psycopg.connect(dsn, connect_timeout=2) as conn:
        return conn.execute("SELECT 1").fetchone()[0]


def test_database_policy_retries_across_a_restart(throwaway_pg, project):
    from elfctl.resilience import retry

    attempts, failed_once = [], threading.Event()

    @retry("database")
    def query():
        attempts.append(time.monotonic())
        try:
            return _select_one(throwaway_pg["dsn"])
        except Exception:
            failed_once.set()
            raise

    realservices.stop_postgres(throwaway_pg["data"])
    result: dict = {}
    worker = threading.Thread(target=lambda: result.setdefault("value", query()))
    worker.start()
    assert failed_once.wait(30), "the first attempt never failed"
    _start_again(throwaway_pg["data"])
    worker.join(60)
    assert result.get("value") == 1
    assert 2 <= len(attempts) <= 3  # the database policy: at most 3 attempts
    assert attempts[-1] - attempts[0] < 30  # inside its deadline


CHECKER = '''
import json, sys
import psycopg
from elfctl.resilience import CircuitOpen, circuit_breaker

calls = []

@circuit_breaker("orders-db", fail_max=2, reset_timeout=1)
def select_one():
    calls.append(1)
    with psycopg.connect(sys.argv[1], connect_timeout=2) as conn:
        return conn.execute("SELECT 1").fetchone()[0]

try:
    print(json.dumps({"value": select_one(), "calls": len(calls)}))
except CircuitOpen as e:
    print(json.dumps({"open": True, "calls": len(calls)}))
except psycopg.OperationalError:
    print(json.dumps({"down": True, "calls": len(calls)}))
'''


def test_breaker_opened_while_down_is_seen_by_a_second_process_then_closes(throwaway_pg, sqlite_store, project):
    (project / "checker.py").write_text(CHECKER)

    def run() -> dict:
        r = subprocess.run([sys.executable, "checker.py", throwaway_pg["dsn"]], cwd=project, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    assert run() == {"value": 1, "calls": 1}
    realservices.stop_postgres(throwaway_pg["data"])
    assert run() == {"down": True, "calls": 1}
    assert run() == {"down": True, "calls": 1}  # two processes' failures: the circuit opens
    seen = run()  # a third process: refused without touching the database (unless 1 s passed: the probe)
    assert seen in ({"open": True, "calls": 0}, {"down": True, "calls": 1})
    _start_again(throwaway_pg["data"])
    end = time.monotonic() + 30
    while (got := run()).get("value") != 1:
        assert time.monotonic() < end, got
    state = sqlite_store.query("SELECT state, fail_counter FROM breaker_state WHERE name = 'orders-db'")[0]
    assert state == {"state": "closed", "fail_counter": 0}
    results = [r["result"] for r in sqlite_store.query("SELECT result FROM platform_actions ORDER BY ts")]
    assert results[0] == "opened" and results[-1] == "closed"
