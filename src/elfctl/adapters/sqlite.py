"""SQLite store: the embedded default (.elf/elf.db), WAL mode, safe for several processes."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from elfctl.adapters.rows_sql import SqlRows
from elfctl.errors import InputError, StoreDamaged, StoreLocked, StoreNotMigrated

# What SQLite says when the file is not a database any more: a bad header, a truncated file, a
# damaged page, or text that is not UTF-8 (which sqlite3 reports while decoding a row).
_DAMAGED = ("file is not a database", "database disk image is malformed", "could not decode to utf-8")
_TABLE = re.compile(r"\b(?:INTO|UPDATE|FROM|TABLE)\s+\"?(\w+)", re.IGNORECASE)


def _operation(sql: str) -> str:
    """A statement named for people: "INSERT on spend_counters", "starting a write transaction"."""
    words = sql.split()
    if not words:
        return "opening the store"
    if words[0].upper() == "BEGIN":
        return "starting a write transaction"
    table = _TABLE.search(sql)
    return f"{words[0].upper()} on {table.group(1)}" if table else words[0].upper()


def _translate(exc: Exception, path: Path, sql: str = "", started: float | None = None) -> Exception:
    """SQLite's errors in the store's terms. The SQL and row values never reach the message (a
    decoding error quotes the row's text)."""
    text = str(exc)
    low = text.lower()
    if isinstance(exc, UnicodeDecodeError) or (isinstance(exc, sqlite3.DatabaseError) and any(
            d in low for d in _DAMAGED)):
        reason = "text that is not UTF-8" if "decode" in low or isinstance(exc, UnicodeDecodeError) else text
        return StoreDamaged(
            f"{path}: the store file is damaged ({reason})",
            hint=f"restore it from a backup; or move it aside with its -wal and -shm files "
                 f"(`mv {path} {path}.damaged`) and run `elfctl db migrate` to start a new, empty store",
        )
    if isinstance(exc, sqlite3.OperationalError) and ("no such table" in low or "no such column" in low):
        return StoreNotMigrated(
            f"the store {path} is not migrated (run `elfctl db migrate`): {text}",
            hint="`elfctl db status` shows the pending migrations; `elfctl db migrate` applies them",
        )
    if isinstance(exc, sqlite3.OperationalError) and "locked" in low:
        waited = f" waited {time.monotonic() - started:.1f}s and" if started is not None else ""
        return StoreLocked(
            f"{path}: {_operation(sql)}{waited} gave up: another process holds the store's write lock",
            hint="retry when the other elfctl (or sqlite3 shell) is done, or raise store.busy_timeout_ms",
        )
    if isinstance(exc, sqlite3.OperationalError) and ("unable to open" in low or "readonly" in low):
        return InputError(
            f"{path}: cannot write the SQLite store ({text})",
            hint=f"make {path.parent} writable, or set store.url to another location",
        )
    return exc


class SqliteStore(SqlRows):
    dialect = "sqlite"

    def __init__(self, path: Path, busy_timeout_ms: int = 10000):
        self.path = path
        self.display_url = f"sqlite:///{path}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"{path.parent}: cannot create the store folder ({exc.strerror})",
                hint="make the project folder writable, or set store.url / ELFCTL_STORE_URL elsewhere",
            ) from None
        if path.exists() and not _writable(path):
            raise InputError(f"{path}: the store file is not writable", hint=f"chmod u+w {path}")
        if not path.exists() and not _writable(path.parent):
            raise InputError(
                f"{path.parent}: folder is not writable, so the store cannot be created",
                hint=f"chmod u+w {path.parent}, or set store.url / ELFCTL_STORE_URL elsewhere",
            )
        self.busy_timeout_ms = busy_timeout_ms
        # One connection per thread (health probes, gateway workers): a sqlite3 connection used by
        # two threads at once, or closed by one while another waits on it, can crash the process.
        self._local = threading.local()
        self._guard = threading.Lock()
        # weak: a finished thread's connection goes (and closes) with its thread-local storage
        self._conns: weakref.WeakSet[_Conn] = weakref.WeakSet()
        self._closed = False
        self._conn_here()  # open now: a damaged or unwritable file is reported when the store opens

    def _connect(self) -> sqlite3.Connection:
        try:
            # isolation_level=None: we issue BEGIN ourselves, so DDL stays inside our transactions.
            conn = sqlite3.connect(str(self.path), isolation_level=None, timeout=self.busy_timeout_ms / 1000,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            return conn
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from None

    def _conn_here(self) -> _Conn:
        c = getattr(self._local, "conn", None)
        if c is None or c.closed:
            c = self._local.conn = _Conn(self._connect())
            with self._guard:
                self._conns.add(c)
        return c

    @contextmanager
    def _use(self, sql: str):
        """This thread's connection, marked busy while in use; SQLite's errors translated."""
        c = self._conn_here()
        with self._guard:
            c.busy += 1
        started = time.monotonic()
        try:
            yield c
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            raise _translate(exc, self.path, sql, started) from exc
        finally:
            with self._guard:
                c.busy -= 1
                if self._closed and not c.busy:  # close() left it to this thread
                    c.close()

    # -- Tx --------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._use(sql) as c:
            return [dict(r) for r in c.conn.execute(sql, tuple(params)).fetchall()]

    def execute(self, sql: str, params: Sequence[Any] | None = ()) -> int:
        with self._use(sql) as c:
            cur = c.conn.execute(sql) if params is None else c.conn.execute(sql, tuple(params))
            return cur.rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._use(sql) as c:
            c.conn.executemany(sql, rows)

    # -- Store -----------------------------------------------------------------------------
    @contextmanager
    def transaction(self):
        c = self._conn_here()
        if c.in_tx:  # nested: join the outer transaction
            yield self
            return
        with self._use("BEGIN IMMEDIATE"):
            c.conn.execute("BEGIN IMMEDIATE")
        with self._use("a transaction"):  # busy until the end: close() must not pull it away
            c.in_tx = True
            try:
                yield self
            except BaseException:
                c.conn.execute("ROLLBACK")
                raise
            else:
                started = time.monotonic()
                try:
                    c.conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    raise _translate(exc, self.path, "COMMIT", started) from exc
            finally:
                c.in_tx = False

    def exclusive(self, name: str, timeout_s: float):
        return nullcontext()

    def tables(self) -> list[str]:
        rows = self.query("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
        return sorted(r["name"] for r in rows)

    def server_version(self) -> str:
        return "SQLite " + sqlite3.sqlite_version

    def close(self) -> None:
        """Close every idle connection now; one another thread is still using (a health probe
        past its timeout) is closed by that thread when its statement ends."""
        with self._guard:
            self._closed = True
            for c in list(self._conns):
                if not c.busy:
                    c.close()


class _Conn:
    """A thread's connection: in a transaction or not, and how many calls are using it."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.in_tx = False
        self.busy = 0
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.conn.close()


def _writable(path: Path) -> bool:
    import os

    return os.access(path, os.W_OK)
