"""Ports: the small interfaces services need from outside systems, no more.

Adapters implement them; services type against them; tests hand in real or fake ones.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol, Sequence


class Tx(Protocol):
    """One open transaction. SQL uses `?` placeholders on every dialect."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...

    def execute(self, sql: str, params: Sequence[Any] | None = ()) -> int:
        """Run one statement, return the row count. `params=None` runs it verbatim (migrations)."""
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


class Store(Tx, Protocol):
    """The relational store (SQLite or PostgreSQL). Outside `transaction()` each call commits."""

    dialect: str  # "sqlite" | "postgres"
    display_url: str  # the URL with its password removed

    def transaction(self) -> AbstractContextManager[Tx]:
        """A write transaction: BEGIN IMMEDIATE on SQLite (takes the write lock at once), BEGIN on
        Postgres. Commits on success, rolls back on any exception."""
        ...

    def exclusive(self, name: str, timeout_s: float) -> AbstractContextManager[None]:
        """A cross-process lock held for the block (Postgres: session advisory lock). On SQLite the
        write lock of `transaction()` already serialises writers, so this may be a no-op."""
        ...

    def tables(self) -> list[str]: ...

    def server_version(self) -> str: ...

    def close(self) -> None: ...
