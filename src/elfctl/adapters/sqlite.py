"""SQLite store: the embedded default (.elf/elf.db), WAL mode, safe for several processes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from elfctl.errors import InputError, OperationFailed


def _translate(exc: sqlite3.Error, path: Path) -> Exception:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
        return OperationFailed(f"{path}: database is locked by another process", hint="retry shortly")
    if isinstance(exc, sqlite3.OperationalError) and ("unable to open" in text or "readonly" in text):
        return InputError(
            f"{path}: cannot write the SQLite store ({text})",
            hint=f"make {path.parent} writable, or set store.url to another location",
        )
    return exc


class SqliteStore:
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
        try:
            # isolation_level=None: we issue BEGIN ourselves, so DDL stays inside our transactions.
            self._conn = sqlite3.connect(
                str(path), isolation_level=None, timeout=busy_timeout_ms / 1000, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise _translate(exc, path) from None
        self._lock = threading.RLock()
        self._in_tx = False

    # -- Tx --------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                return [dict(r) for r in self._conn.execute(sql, tuple(params)).fetchall()]
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc

    def execute(self, sql: str, params: Sequence[Any] | None = ()) -> int:
        with self._lock:
            try:
                cur = self._conn.execute(sql) if params is None else self._conn.execute(sql, tuple(params))
                return cur.rowcount
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock:
            try:
                self._conn.executemany(sql, rows)
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc

    # -- Store -----------------------------------------------------------------------------
    @contextmanager
    def transaction(self):
        with self._lock:
            if self._in_tx:  # nested: join the outer transaction
                yield self
                return
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from None
            self._in_tx = True
            try:
                yield self
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._in_tx = False

    def exclusive(self, name: str, timeout_s: float):
        return nullcontext()

    def tables(self) -> list[str]:
        rows = self.query("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
        return sorted(r["name"] for r in rows)

    def server_version(self) -> str:
        return "SQLite " + sqlite3.sqlite_version

    def close(self) -> None:
        self._conn.close()


def _writable(path: Path) -> bool:
    import os

    return os.access(path, os.W_OK)
