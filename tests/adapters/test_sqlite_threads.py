"""One SqliteStore used from several threads: each thread has its own connection."""

from __future__ import annotations

import threading
import time

from elfctl.adapters.sqlite import SqliteStore
from elfctl.errors import StoreLocked


def test_a_thread_reads_while_another_holds_a_transaction(tmp_path):
    store = SqliteStore(tmp_path / "elf.db")
    store.execute("CREATE TABLE t (v INTEGER)", None)
    store.execute("INSERT INTO t VALUES (1)", None)
    inside, release = threading.Event(), threading.Event()

    def writer():
        with store.transaction() as tx:
            tx.execute("UPDATE t SET v = 2")
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    assert inside.wait(10)
    started = time.monotonic()
    assert store.query("SELECT v FROM t") == [{"v": 1}]  # the committed value, at once
    assert time.monotonic() - started < 1
    release.set()
    thread.join(10)
    assert store.query("SELECT v FROM t") == [{"v": 2}]
    store.close()


def test_close_does_not_wait_for_a_thread_stuck_on_the_lock(tmp_path):
    path = tmp_path / "elf.db"
    holder = SqliteStore(path)
    holder.execute("CREATE TABLE t (v INTEGER)", None)
    store = SqliteStore(path, busy_timeout_ms=1500)
    outcome: list[BaseException] = []
    with holder.transaction():
        holder.execute("INSERT INTO t VALUES (1)")

        def waiter():
            try:
                store.execute("INSERT INTO t VALUES (2)")
            except BaseException as exc:  # noqa: BLE001
                outcome.append(exc)

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.3)  # the waiter is in SQLite's busy wait now
        started = time.monotonic()
        store.close()  # what the CLI does at exit while a health probe still waits
        assert time.monotonic() - started < 0.5
        thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], StoreLocked)
    assert "INSERT on t waited 1." in outcome[0].message
    holder.close()
