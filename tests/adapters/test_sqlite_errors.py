"""SQLite failures in the store's terms, on real damaged files and a lock held by another process."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import pytest
from tests.conftest import run_elfctl

from elfctl.adapters.sqlite import SqliteStore
from elfctl.errors import StoreDamaged, StoreLocked, StoreNotMigrated


@pytest.fixture
def db(tmp_path):
    """A real store file with a table t of text rows over several full pages; returns (path, the
    number of a full leaf page of t)."""
    path = tmp_path / "elf.db"
    store = SqliteStore(path)
    store.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)", None)
    store.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i} " + "x" * 80) for i in range(400)])
    root = store.query("SELECT rootpage FROM sqlite_master WHERE name = 't'")[0]["rootpage"]
    assert store.query("PRAGMA page_count")[0]["page_count"] > root + 3
    store.execute("PRAGMA wal_checkpoint(TRUNCATE)", None)  # every page in the main file
    store.close()
    return path, root + 1  # the root is an interior page; the leaves follow it


def _read_all(path):
    """Open the store and read t, as any command would; where SQLite notices the damage (opening or
    reading) is its business."""
    store = SqliteStore(path)
    try:
        return store.query("SELECT * FROM t")
    finally:
        store.close()


def _damaged(path, err):
    assert str(path) in err.value.message and "damaged" in err.value.message
    assert "backup" in err.value.hint and "elfctl db migrate" in err.value.hint
    assert err.value.exit_code == 1 and err.value.code == "store_damaged"


def test_truncated_file(db):
    path, leaf = db
    with open(path, "r+b") as f:
        f.truncate(4096 * leaf)
    with pytest.raises(StoreDamaged) as err:
        _read_all(path)
    _damaged(path, err)


def test_bad_header(db):
    path, _ = db
    with open(path, "r+b") as f:
        f.write(b"this is no sqlite header")
    with pytest.raises(StoreDamaged) as err:
        _read_all(path)
    _damaged(path, err)


def test_flipped_bytes_in_the_middle_of_a_page(db):
    path, leaf = db
    data = bytearray(path.read_bytes())
    middle = (leaf - 1) * 4096 + 2048
    for i in range(middle, middle + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StoreDamaged) as err:
        _read_all(path)
    _damaged(path, err)
    assert "xxxx" not in err.value.message  # a row's text never reaches the message


def test_text_that_is_not_utf8(tmp_path):
    path = tmp_path / "elf.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.execute("INSERT INTO t VALUES (CAST(? AS TEXT))", (b"secret-\xff\xfe",))
    store = SqliteStore(path)
    with pytest.raises(StoreDamaged, match="not UTF-8") as err:
        store.query("SELECT v FROM t")
    assert "secret" not in err.value.message
    store.close()


def test_write_lock_held_by_another_process_names_operation_and_wait(tmp_path):
    path = tmp_path / "elf.db"
    SqliteStore(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time\n"
         f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE'); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        store = SqliteStore(path, busy_timeout_ms=400)
        started = time.monotonic()
        with pytest.raises(StoreLocked) as err:
            with store.transaction():
                pass
        assert time.monotonic() - started >= 0.35
        msg = err.value.message
        assert str(path) in msg and "starting a write transaction waited 0." in msg and "write lock" in msg
        assert "store.busy_timeout_ms" in err.value.hint and err.value.exit_code == 1
        store.close()
    finally:
        holder.stdin.close()
        holder.wait(10)


def test_dropped_table_is_store_not_migrated_through_the_cli(project):
    assert run_elfctl("db", "migrate", cwd=project).returncode == 0
    with sqlite3.connect(project / ".elf" / "elf.db") as conn:
        conn.execute("DROP TABLE spend_counters")
    proc = run_elfctl("--json", "cost", "budget", "set", "alpha", "--daily", "1", cwd=project)
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "store_not_migrated"
    assert "the store" in error["message"] and "is not migrated (run `elfctl db migrate`)" in error["message"]
    assert "Traceback" not in proc.stderr


def test_damaged_store_through_the_cli(project):
    assert run_elfctl("db", "migrate", cwd=project).returncode == 0
    path = project / ".elf" / "elf.db"
    with open(path, "r+b") as f:
        f.write(b"\0" * 100)
    proc = run_elfctl("cost", "budget", "list", cwd=project)
    assert proc.returncode == 1
    assert f"error: {path}: the store file is damaged" in proc.stderr and "internal" not in proc.stderr


def test_adapter_raises_not_migrated_for_missing_column(tmp_path):
    store = SqliteStore(tmp_path / "elf.db")
    store.execute("CREATE TABLE t (a INTEGER)", None)
    with pytest.raises(StoreNotMigrated, match="no such column: b"):
        store.query("SELECT b FROM t")
    store.close()
