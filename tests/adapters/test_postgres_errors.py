"""psycopg errors by SQLSTATE class, provoked on the real PostgreSQL server."""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest
from tests.conftest import run_elfctl

from elfctl.adapters.postgres import PostgresStore
from elfctl.errors import Conflict, InputError, StoreFull, StoreNotMigrated, Timeout, Unreachable


@pytest.fixture
def pg(pg_url):
    store = PostgresStore(pg_url)
    store.execute("CREATE TABLE t (k INT PRIMARY KEY, v INT NOT NULL)", None)
    store.execute("INSERT INTO t VALUES (2, 0), (1, 0)", None)  # k=2 first on disk: a scan locks it first
    yield store
    store.close()


def _deadlocks(url) -> int:
    with psycopg.connect(url, autocommit=True) as c:
        return c.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
                         ).fetchone()[0]


def test_dropped_table_is_store_not_migrated(pg):
    pg.execute("DROP TABLE t", None)
    with pytest.raises(StoreNotMigrated, match=r'is not migrated \(run `elfctl db migrate`\).*"t"') as err:
        pg.query("SELECT * FROM t")
    assert err.value.exit_code == 1
    with pytest.raises(StoreNotMigrated, match="column"):
        pg.query("SELECT no_such_column FROM pg_class")


def test_dropped_table_through_the_cli(project, pg_url):
    env = {"ELFCTL_STORE_URL": pg_url}
    assert run_elfctl("db", "migrate", cwd=project, env=env).returncode == 0
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("DROP TABLE spend_counters")
    proc = run_elfctl("--json", "cost", "budget", "set", "alpha", "--daily", "1", cwd=project, env=env)
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "store_not_migrated" and "elfctl db migrate" in error["message"]


def test_statement_timeout_is_timeout(pg):
    pg.execute("SET statement_timeout = '200ms'", None)
    started = time.monotonic()
    with pytest.raises(Timeout, match="cancelled the statement: canceling statement due to statement timeout"):
        pg.query("SELECT pg_sleep(5)")
    assert time.monotonic() - started < 3
    assert pg.query("SELECT 1 AS one") == [{"one": 1}]  # the connection is still usable


def test_resource_limit_is_store_full(pg):
    # 53400 configuration_limit_exceeded: a sort spilling past temp_file_limit
    pg.execute("SET work_mem = '64kB'", None)
    pg.execute("SET temp_file_limit = '128kB'", None)
    with pytest.raises(StoreFull, match="out of resources: temporary file size exceeds temp_file_limit") as err:
        pg.query("SELECT g FROM generate_series(1, 300000) g ORDER BY random()")
    assert err.value.exit_code == 1 and err.value.code == "store_full"


def test_bad_values_are_input_errors(pg):
    with pytest.raises(InputError, match="duplicate key") as err:
        pg.execute("INSERT INTO t VALUES (?, ?)", (1, 5))
    assert err.value.exit_code == 2
    with pytest.raises(InputError, match="invalid input syntax for type integer"):
        pg.execute("INSERT INTO t VALUES (?, ?)", ("not a number", 5))
    with pytest.raises(InputError, match="out of range"):
        pg.execute("INSERT INTO t VALUES (?, ?)", (2**40, 5))


def _other(pg_url):
    other = psycopg.connect(pg_url)  # not autocommit: holds its locks until commit
    other.execute("SET deadlock_timeout = '30s'")  # so the store's side detects the deadlock
    return other


def test_deadlock_inside_a_transaction_is_conflict(pg, pg_url):
    other = _other(pg_url)
    pg.execute("SET deadlock_timeout = '100ms'", None)
    other.execute("UPDATE t SET v = v + 1 WHERE k = 1")
    blocked = threading.Thread(target=lambda: (other.execute("UPDATE t SET v = v + 10 WHERE k = 2"),
                                               other.commit()))
    with pytest.raises(Conflict, match="deadlock detected") as err:
        with pg.transaction() as tx:
            tx.execute("UPDATE t SET v = v + 100 WHERE k = 2")
            blocked.start()
            time.sleep(0.3)  # the other session now waits for k=2
            tx.execute("UPDATE t SET v = v + 100 WHERE k = 1")
    blocked.join(10)
    other.close()
    assert err.value.exit_code == 1 and err.value.code == "conflict"
    # the store's transaction left nothing; the other one committed
    assert {r["k"]: r["v"] for r in pg.query("SELECT k, v FROM t")} == {1: 1, 2: 10}


def test_deadlock_outside_a_transaction_is_retried(pg, pg_url):
    other = _other(pg_url)
    # the store's statement starts waiting first: its one deadlock check must come after the other
    # session started waiting too
    pg.execute("SET deadlock_timeout = '1s'", None)
    before = _deadlocks(pg_url)
    other.execute("UPDATE t SET v = v + 1 WHERE k = 1")

    def then_lock_k2():
        time.sleep(0.3)  # the store's statement holds k=2 and waits for k=1 by now
        other.execute("UPDATE t SET v = v + 10 WHERE k = 2")
        other.commit()

    thread = threading.Thread(target=then_lock_k2)
    thread.start()
    # one statement: locks k=2 (first on disk), then waits for k=1 held by the other session
    assert pg.execute("UPDATE t SET v = v + 100 WHERE k IN (1, 2)") == 2
    thread.join(10)
    other.close()
    assert _deadlocks(pg_url) == before + 1  # it really deadlocked once, and the retry went through
    assert {r["k"]: r["v"] for r in pg.query("SELECT k, v FROM t")} == {1: 101, 2: 110}


def test_terminated_connection_is_unreachable(pg, pg_dsn):
    pid = pg.query("SELECT pg_backend_pid() AS pid")[0]["pid"]
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(Unreachable) as err:
        pg.query("SELECT 1")
    assert err.value.exit_code == 3


def test_bad_url_option_is_input_error_without_password(project, pg_dsn):
    url = pg_dsn.replace("postgres@", "postgres:hunter22@", 1) + "?sslmode=bogus"
    proc = run_elfctl("--json", "cost", "budget", "list", cwd=project, env={"ELFCTL_STORE_URL": url})
    assert proc.returncode == 2, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "invalid_input"
    assert error["message"].startswith("store.url (from env ELFCTL_STORE_URL)")
    assert 'invalid sslmode value: "bogus"' in error["message"]
    assert "hunter22" not in proc.stdout + proc.stderr


def test_wrong_role_is_input_error(pg_dsn):
    url = pg_dsn.replace("postgres@", "nobody:pw@", 1)
    with pytest.raises(InputError, match='refused the connection.*role "nobody" does not exist') as err:
        PostgresStore(url, setting="store.url (from test)")
    assert "store.url (from test)" in err.value.hint
