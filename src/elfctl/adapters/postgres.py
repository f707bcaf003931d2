"""PostgreSQL store through psycopg 3 (also how a Supabase project's database is reached)."""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Any

from elfctl.adapters.rows_sql import SqlRows
from elfctl.adapters.rows_sql import name as _name
from elfctl.errors import (
    Conflict,
    ElfError,
    InputError,
    LockTimeout,
    StoreFull,
    StoreNotMigrated,
    Timeout,
    Unreachable,
)
from elfctl.redact import redact_url, scrub

_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|%|\?")
# Deadlock and serialization failure: the server rolled the statement's transaction back, so running
# it again is safe when that transaction was the statement alone (outside `transaction()`).
_CONFLICT = ("40001", "40P01")
RETRIES = 3
# The server answered the connection and refused these: the URL's user, password or database is wrong.
_REFUSED = re.compile(r"password authentication failed|role .* does not exist|database .* does not exist|"
                      r"no pg_hba\.conf entry")


def _to_pyformat(sql: str) -> str:
    """`?` placeholders -> `%s`; every literal `%` -> `%%` (psycopg parses `%` even inside quotes);
    a `?` inside quoted text stays as it is."""

    def sub(m: re.Match) -> str:
        tok = m.group(0)
        return "%s" if tok == "?" else tok.replace("%", "%%")

    return _PLACEHOLDER.sub(sub, sql)


POOLERS = ("auto", "transaction", "none")
POOLER_PORT = 6543  # Supabase's transaction pooler (Supavisor); its session pooler listens on 5432


def transaction_pooled(url: str, pooler: str = "auto") -> bool:
    """Whether `url` reaches the server through a pooler in transaction mode, where consecutive
    transactions may run on different server connections: `store.pooler = transaction`, or
    `auto` and the URL's port is 6543."""
    if pooler != "auto":
        return pooler == "transaction"
    from psycopg.conninfo import conninfo_to_dict

    try:
        port = conninfo_to_dict(url).get("port")
    except Exception:  # noqa: BLE001 - a malformed URL is reported by connect(), naming the setting
        return False
    return str(port) == str(POOLER_PORT)


class PostgresStore(SqlRows):
    dialect = "postgres"

    def __init__(self, url: str, connect_timeout_s: int = 5, setting: str = "store.url", pooler: str = "auto"):
        """`setting` names where the URL came from in errors, e.g. "store.url (from ELFCTL_STORE_URL)".
        `pooler`: see transaction_pooled()."""
        import psycopg
        from psycopg.rows import dict_row

        self._psycopg = psycopg
        self.display_url = redact_url(url)
        self.transaction_pooled = transaction_pooled(url, pooler)
        # Behind a transaction pooler nothing may rely on the server session: psycopg's server-side
        # prepared statements would be prepared on one server connection and run on another
        # ("prepared statement ... does not exist" / "already exists"), so never prepare.
        options = {"prepare_threshold": None} if self.transaction_pooled else {}
        self._connect = lambda: psycopg.connect(url, autocommit=True, row_factory=dict_row,
                                                connect_timeout=connect_timeout_s, **options)
        try:
            self._conn = self._connect()
        except psycopg.Error as exc:
            raise self._connect_error(exc, url, setting) from None
        self._lock = threading.RLock()
        self._in_tx = False

    def _connect_error(self, exc: Exception, url: str, setting: str) -> ElfError:
        # psycopg quotes the URL in some messages: never show it, the password may be in it.
        reason = (str(exc).strip().replace(url, "the URL") or "no answer").splitlines()[-1]
        reason = scrub(reason)
        fix = "use postgresql://user:password@host:port/dbname?option=value with libpq's option names"
        # "connection is bad": libpq refused the URL itself before any network traffic (an unknown
        # sslmode, a port out of range); "connection failed": the network or the server said no.
        if isinstance(exc, self._psycopg.ProgrammingError) or str(exc).startswith("connection is bad"):
            return InputError(f"{setting} {self.display_url} is not a valid PostgreSQL URL: "
                              f"{reason.removeprefix('connection is bad: ')}", hint=fix)
        if _REFUSED.search(reason):
            return InputError(f"PostgreSQL at {self.display_url} refused the connection: {reason}",
                              hint=f"check the user, password and database name in {setting}")
        return Unreachable(
            f"PostgreSQL at {self.display_url} is unreachable: {reason}",
            hint=f"check that the server is running and {setting} is right",
        )

    def _translate(self, exc: Exception) -> Exception:
        """psycopg's errors by SQLSTATE class; anything else (a bug in our SQL) stays as it is."""
        psycopg = self._psycopg
        state = getattr(exc, "sqlstate", None) or ""
        diag = getattr(exc, "diag", None)
        said = scrub((diag and diag.message_primary) or str(exc).strip())
        where = f"PostgreSQL at {self.display_url}"
        if state in ("42P01", "42703") or (state == "42883" and "elfctl_" in said):  # 42883: no such function
            return StoreNotMigrated(f"the store {self.display_url} is not migrated (run `elfctl db migrate`): "
                                    f"{said}", hint="`elfctl db status` shows the pending migrations")
        if state in _CONFLICT:
            return Conflict(f"{where}: a concurrent transaction conflicted with this one ({said}); "
                            "nothing of it was written", hint="run the command again")
        if state == "57014":
            return Timeout(f"{where} cancelled the statement: {said}",
                           hint="the server's statement_timeout cut it short; retry, or raise the timeout")
        if state.startswith("53"):
            return StoreFull(f"{where} is out of resources: {said}",
                             hint="free disk space or memory on the database server, or raise its limits")
        if state.startswith(("22", "23")):
            return InputError(f"{where} refused a value: {said}",
                              hint="check the values given to the command")
        if state.startswith("08") or state in ("57P01", "57P02", "57P03") or (
                isinstance(exc, psycopg.OperationalError) and not state):
            return Unreachable(f"{where}: {said}", hint="is the server up?")
        return exc

    def _run(self, fn, retry: bool = True):
        """One statement under the connection lock, its errors translated; a deadlock or
        serialization failure outside a transaction is retried up to RETRIES times (inside one, the
        whole block is the caller's to repeat: it gets Conflict)."""
        with self._lock:
            for attempt in range(RETRIES + 1):
                try:
                    return fn()
                except self._psycopg.Error as exc:
                    again = retry and not self._in_tx and attempt < RETRIES
                    if again and getattr(exc, "sqlstate", None) in _CONFLICT:
                        time.sleep(0.05 * 2**attempt)
                        continue
                    translated = self._translate(exc)
                    if translated is exc:
                        raise
                    raise translated from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self._run(lambda: list(self._conn.execute(_to_pyformat(sql), tuple(params)).fetchall()))

    def execute(self, sql: str, params: Sequence[Any] | None = ()) -> int:
        def run() -> int:
            if params is None:
                return self._conn.execute(sql).rowcount  # verbatim: no placeholder processing
            return self._conn.execute(_to_pyformat(sql), tuple(params)).rowcount

        return self._run(run)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        def run() -> None:
            with self._conn.cursor() as cur:
                cur.executemany(_to_pyformat(sql), rows)

        # never retried: outside a transaction each row commits on its own, so a retry would repeat rows
        self._run(run, retry=False)

    def call(self, fn: str, args: dict[str, Any]) -> Any:
        """`SELECT public.<fn>(name => value, ...)`: one of elfctl's database functions (migration
        0110), the same ones Supabase's REST store runs with `rpc`. psycopg decodes jsonb itself.
        Runs inside `transaction()` when called there; outside it, a deadlock is retried like any
        single statement (the function is all or nothing)."""
        fn = _name(fn, "function")  # names go into the SQL as they are: [a-z_][a-z0-9_]* only
        for arg in args:
            _name(arg, "argument")
        from psycopg.types.json import Jsonb

        # JSON objects, and lists of them, go as jsonb (as PostgREST passes an rpc's JSON body);
        # lists of plain values as arrays
        values = [Jsonb(v) if isinstance(v, dict) or (isinstance(v, list) and v and isinstance(v[0], dict))
                  else v for v in args.values()]
        named = ", ".join(f"{name} => ?" for name in args)
        rows = self.query(f"SELECT public.{fn}({named}) AS result", values)
        return rows[0]["result"]

    @contextmanager
    def transaction(self):
        """All statements inside commit together or not at all. A conflict (deadlock, serialization
        failure) is raised as Conflict and not retried here: only the caller can run its block again."""
        with self._lock:
            if self._in_tx:
                yield self
                return
            self._in_tx = True
            try:
                with self._conn.transaction():
                    yield self
            except self._psycopg.Error as exc:  # raised by BEGIN or COMMIT; statements translate their own
                translated = self._translate(exc)
                if translated is exc:
                    raise
                raise translated from exc
            finally:
                self._in_tx = False

    @contextmanager
    def exclusive(self, name: str, timeout_s: float):
        """Advisory lock held for the block, polled with pg_try_advisory_*lock until `timeout_s`.
        Direct connection: a session lock on this connection. Behind a transaction pooler a session
        lock would stay on whichever server connection ran it (and the unlock may run on another),
        so it is a transaction-scoped lock held by an open transaction on a second connection of
        its own: the pooler pins one server connection to it until COMMIT, and a killed process
        ends that transaction, releasing the lock. This connection's own transactions stay separate."""
        key = zlib.crc32(f"elfctl:{name}".encode())
        if not self.transaction_pooled:
            self._poll_lock(name, timeout_s, lambda: self.query("SELECT pg_try_advisory_lock(?) AS ok", (key,)))
            try:
                yield
            finally:
                try:
                    self.query("SELECT pg_advisory_unlock(?) AS ok", (key,))
                except ElfError:
                    pass
            return
        conn = self._run(self._connect)
        try:
            self._run(lambda: conn.execute("BEGIN"))
            self._poll_lock(name, timeout_s, lambda: self._run(
                lambda: conn.execute("SELECT pg_try_advisory_xact_lock(%s) AS ok", (key,)).fetchall()))
            yield
        finally:
            try:
                conn.execute("ROLLBACK")  # ends the transaction: releases the lock, changes nothing
            except self._psycopg.Error:
                pass
            conn.close()

    def _poll_lock(self, name: str, timeout_s: float, try_lock) -> None:
        deadline = time.monotonic() + timeout_s
        while not try_lock()[0]["ok"]:
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"another process holds the '{name}' lock on {self.display_url} (waited {timeout_s:g}s)",
                    hint="wait for it to finish, or raise store.lock_timeout_s",
                )
            time.sleep(0.1)

    def tables(self) -> list[str]:
        rows = self.query(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        )
        return [r["name"] for r in rows]

    def server_version(self) -> str:
        return "PostgreSQL " + self.query("SHOW server_version")[0]["server_version"]

    def close(self) -> None:
        self._conn.close()

