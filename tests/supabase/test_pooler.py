"""PostgresStore through Debian's pgbouncer in transaction mode (Supabase's port 6543): migrate,
the migrate/credentials lock and the deploy lease exclude other processes, the ledger reserves and
records, and many clients sharing few server connections never trip over prepared statements."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import pytest

from elfctl.adapters.postgres import PostgresStore, transaction_pooled
from elfctl.errors import LockTimeout
from tests import pgbouncer
from tests.conftest import run_elfctl, unavailable

POOLED = {"ELFCTL_STORE_POOLER": "transaction"}


@pytest.fixture(scope="module")
def pooler(pg_dsn):
    try:
        # Two server connections for every client: transactions really do swap connections, and the
        # lock's pinned connection leaves exactly one for everything else.
        p = pgbouncer.start(pg_dsn, pool_size=2)
    except Exception as exc:  # noqa: BLE001
        unavailable(f"cannot start pgbouncer: {exc}")
    yield p
    p.stop()


@pytest.fixture
def pooled_url(pooler, pg_url):
    """A fresh database, reached through the pooler."""
    return pooler.url(urlsplit(pg_url).path.lstrip("/"))


def _migrate(url, project):
    res = run_elfctl("db", "migrate", "--json", cwd=project, env={"ELFCTL_STORE_URL": url, **POOLED})
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


def test_pooler_detection():
    assert transaction_pooled("postgresql://u:p@db.pooler.supabase.com:6543/postgres")
    assert not transaction_pooled("postgresql://u:p@db.pooler.supabase.com:5432/postgres")  # session mode
    assert not transaction_pooled("postgresql://u:p@h:6543/postgres", "none")
    assert transaction_pooled("postgresql://u:p@h:5432/postgres", "transaction")


def test_bad_pooler_setting_names_the_key(project, pg_url):
    res = run_elfctl("db", "status", cwd=project, env={"ELFCTL_STORE_URL": pg_url, "ELFCTL_STORE_POOLER": "txn"})
    assert res.returncode == 2
    assert "store.pooler 'txn'" in res.stderr and "auto, transaction, none" in res.stderr
    assert "Traceback" not in res.stderr


def test_migrate_through_the_pooler(project, pooled_url, pg_url):
    out = _migrate(pooled_url, project)
    assert out["applied"] and out["current_version"] == max(m["version"] for m in out["applied"])
    res = run_elfctl("db", "status", "--json", cwd=project, env={"ELFCTL_STORE_URL": pooled_url, **POOLED})
    assert res.returncode == 0 and json.loads(res.stdout)["pending"] == 0
    direct = PostgresStore(pg_url)  # the schema really is there, seen without the pooler
    assert {"api_usage", "daily_cost_summary", "schema_migrations"} <= set(direct.tables())
    direct.close()


HOLD = """
import sys
from elfctl.adapters.postgres import PostgresStore
store = PostgresStore(sys.argv[1], pooler="transaction")
with store.exclusive("migrate", 5):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


def _holder(url):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_the_migrate_lock_excludes_another_process_and_dies_with_it(project, pooled_url):
    """A session advisory lock behind a transaction pooler excludes nobody (the second process's
    try-lock may run on the very server connection that holds it, and succeeds); the transaction-
    scoped lock on its own connection does. kill -9 of the holder releases it."""
    _migrate(pooled_url, project)
    proc = _holder(pooled_url)
    try:
        env = {"ELFCTL_STORE_URL": pooled_url, "ELFCTL_STORE_LOCK_TIMEOUT_S": "1", **POOLED}
        for _ in range(3):  # whichever server connection each attempt lands on
            res = run_elfctl("db", "migrate", "--json", cwd=project, env=env)
            assert res.returncode == 1, res.stdout + res.stderr
            assert json.loads(res.stdout)["error"]["code"] == "lock_timeout"
            assert "another process holds the 'migrate' lock" in json.loads(res.stdout)["error"]["message"]
    finally:
        proc.kill()
        proc.wait()
    store = PostgresStore(pooled_url, pooler="transaction")
    t = time.monotonic()
    with store.exclusive("migrate", 10):
        pass
    assert time.monotonic() - t < 5  # the killed holder's transaction ended, and its lock with it
    store.close()


def test_exclusive_block_keeps_its_own_transactions(project, pooled_url):
    """The lock's transaction is on its own connection: work inside the block commits as it goes,
    and a failed transaction inside rolls back alone."""
    _migrate(pooled_url, project)
    store = PostgresStore(pooled_url, pooler="transaction")
    other = PostgresStore(pooled_url, pooler="transaction")
    with store.exclusive("creds", 5):
        with store.transaction() as tx:
            tx.execute("INSERT INTO budgets (team, daily_nanousd, updated_at) VALUES ('a', 1, 'x')")
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.execute("INSERT INTO budgets (team, daily_nanousd, updated_at) VALUES ('b', 1, 'x')")
            raise RuntimeError
        # committed before the lock is released, seen from another connection
        assert [r["team"] for r in other.query("SELECT team FROM budgets")] == ["a"]
        with pytest.raises(LockTimeout):
            with other.exclusive("creds", 0.3):
                pass
    with other.exclusive("creds", 1):
        pass
    store.close()
    other.close()


LEASE = """
import sys
from elfctl.adapters.postgres import PostgresStore
from elfctl.services.deploy import lock
store = PostgresStore(sys.argv[1], pooler="transaction")
with lock.lease(store, "team-a", "alice@ci", ttl_s=30):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_the_deploy_lease_held_by_another_process_excludes(project, pooled_url):
    from elfctl.services.deploy import lock as deploy_lock

    _migrate(pooled_url, project)
    proc = subprocess.Popen([sys.executable, "-c", LEASE, pooled_url], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        store = PostgresStore(pooled_url, pooler="transaction")
        with pytest.raises(LockTimeout) as err:
            with deploy_lock.lease(store, "team-a", "bob@laptop", ttl_s=30, wait_s=0.5, poll_s=0.05):
                pass
        assert "alice@ci" in err.value.message
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(30) == 0
        with deploy_lock.lease(store, "team-a", "bob@laptop", ttl_s=30, wait_s=5, poll_s=0.05):
            assert deploy_lock.holder(store, "team-a").owner.startswith("bob@laptop")
        store.close()
    finally:
        proc.kill()
        proc.wait()


def test_ledger_reserve_and_record_through_the_pooler(project, pooled_url):
    import datetime as dt

    from elfctl.domain.budget import Budget
    from elfctl.domain.clock import iso
    from elfctl.domain.usage import UsageRow
    from elfctl.services.cost import budgets, ledger

    _migrate(pooled_url, project)
    store = PostgresStore(pooled_url, pooler="transaction")
    b = budgets.set_budget(store, Budget("team-a", daily_nanousd=10_000))
    for i in range(3):
        res = budgets.reserve(store, b, 3000, ttl_s=60)
        ledger.record(store, [UsageRow(request_id=f"r{i}", ts=iso(dt.datetime.now(dt.UTC)), team="team-a",
                                       requested_model="gpt-4o", model="gpt-4o", cost_nanousd=2500,
                                       reservation_id=res.id)])
    with pytest.raises(budgets.Refused):
        budgets.reserve(store, b, 3000, ttl_s=60)  # 7,500 spent + 3,000 > 10,000
    day = [s for s in budgets.states(store, b) if s.window == "day"][0]
    assert (day.spent, day.reserved) == (7500, 0)
    assert store.query("SELECT SUM(cost_nanousd) AS s FROM daily_cost_summary")[0]["s"] == 7500
    store.close()


def test_many_clients_no_prepared_statement_errors(pooled_url):
    """psycopg prepares a statement on its 5th run; behind a transaction pooler that statement
    lives on one server connection while the next run lands on another ('prepared statement
    "_pg3_0" does not exist' / 'already exists'). The pooled store never prepares."""
    errors: list[str] = []

    def client():
        store = PostgresStore(pooled_url, pooler="transaction")
        try:
            for i in range(60):
                assert store.query("SELECT ?::int AS n, pg_backend_pid() AS pid", (i,))[0]["n"] == i
        except Exception as exc:  # noqa: BLE001 - any failure is the bug under test
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            store.close()

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert os.environ.get("ELFCTL_STORE_POOLER") is None  # the setting did not leak from another test
