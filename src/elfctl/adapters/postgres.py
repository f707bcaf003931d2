"""PostgreSQL store through psycopg 3 (also how a Supabase project's database is reached)."""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

from elfctl.errors import ElfError, InputError, LockTimeout, Unreachable
from elfctl.redact import redact_url

_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|%|\?")


def _to_pyformat(sql: str) -> str:
    """`?` placeholders -> `%s`; every literal `%` -> `%%` (psycopg parses `%` even inside quotes);
    a `?` inside quoted text stays as it is."""

    def sub(m: re.Match) -> str:
        tok = m.group(0)
        return "%s" if tok == "?" else tok.replace("%", "%%")

    return _PLACEHOLDER.sub(sub, sql)


class PostgresStore:
    dialect = "postgres"

    def __init__(self, url: str, connect_timeout_s: int = 5):
        import psycopg
        from psycopg.rows import dict_row

        self._psycopg = psycopg
        self.display_url = redact_url(url)
        try:
            self._conn = psycopg.connect(
                url, autocommit=True, row_factory=dict_row, connect_timeout=connect_timeout_s
            )
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no answer"
            raise Unreachable(
                f"PostgreSQL at {self.display_url} is unreachable: {redact_url(reason)}",
                hint="check that the server is running and store.url / ELFCTL_STORE_URL is right",
            ) from None
        except psycopg.ProgrammingError as exc:
            raise InputError(
                f"store.url {self.display_url} is not a valid PostgreSQL URL ({exc})",
                hint="use postgresql://user:password@host:port/dbname",
            ) from None
        self._lock = threading.RLock()
        self._in_tx = False

    def _translate(self, exc: Exception) -> Exception:
        psycopg = self._psycopg
        if isinstance(exc, psycopg.OperationalError):
            return Unreachable(f"PostgreSQL at {self.display_url}: {exc}".strip(), hint="is the server up?")
        return exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                return list(self._conn.execute(_to_pyformat(sql), tuple(params)).fetchall())
            except self._psycopg.Error as exc:
                raise self._translate(exc) from exc

    def execute(self, sql: str, params: Sequence[Any] | None = ()) -> int:
        with self._lock:
            try:
                if params is None:
                    cur = self._conn.execute(sql)  # verbatim: no placeholder processing
                else:
                    cur = self._conn.execute(_to_pyformat(sql), tuple(params))
                return cur.rowcount
            except self._psycopg.Error as exc:
                raise self._translate(exc) from exc

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock:
            try:
                with self._conn.cursor() as cur:
                    cur.executemany(_to_pyformat(sql), rows)
            except self._psycopg.Error as exc:
                raise self._translate(exc) from exc

    @contextmanager
    def transaction(self):
        with self._lock:
            if self._in_tx:
                yield self
                return
            self._in_tx = True
            try:
                with self._conn.transaction():
                    yield self
            except self._psycopg.OperationalError as exc:
                raise self._translate(exc) from exc
            finally:
                self._in_tx = False

    @contextmanager
    def exclusive(self, name: str, timeout_s: float):
        """Session-level advisory lock, polled with pg_try_advisory_lock until `timeout_s`."""
        key = zlib.crc32(f"elfctl:{name}".encode())
        deadline = time.monotonic() + timeout_s
        while True:
            if self.query("SELECT pg_try_advisory_lock(?) AS ok", (key,))[0]["ok"]:
                break
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"another process holds the '{name}' lock on {self.display_url} (waited {timeout_s:g}s)",
                    hint="wait for it to finish, or raise store.lock_timeout_s",
                )
            time.sleep(0.1)
        try:
            yield
        finally:
            try:
                self.query("SELECT pg_advisory_unlock(?) AS ok", (key,))
            except ElfError:
                pass

    def tables(self) -> list[str]:
        rows = self.query(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        )
        return [r["name"] for r in rows]

    def server_version(self) -> str:
        return "PostgreSQL " + self.query("SHOW server_version")[0]["server_version"]

    def close(self) -> None:
        self._conn.close()

