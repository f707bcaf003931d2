"""Ports: the small interfaces services need from outside systems, no more.

Adapters implement them; services type against them; tests hand in real or fake ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


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


# --- Deploy targets (Docker, Kubernetes) --------------------------------------------------------
# The deploy service (lock, state machine, build/push, history, rollback decisions) is the same for
# every target; a target only knows how to run a given image of a team and report on it.


class Rollout(Protocol):
    """What a target reports after trying to put an image into service."""

    ok: bool  # True: the new version serves (health gate / rollout status passed)
    reason: str  # why not, or what happened ("3/3 replicas ready", "health gate: 500 from /health")
    logs: str  # last lines of the new version's log when it failed ("" otherwise)
    warnings: list[str]  # e.g. IETF health `warn` seen during the gate


class DeployTarget(Protocol):
    name: str  # "docker" | "kubernetes"

    def prepare(self) -> tuple[bool, str]:
        """`infra up` step: make the target ready (network / namespace, pull secret ...).
        Idempotent: returns (changed, details)."""
        ...

    def serving(self, team: str) -> str | None:
        """The image reference currently serving this team, or None."""
        ...

    def rollout(self, spec: Any, image: str, revision: int, env: dict[str, str], secrets: dict[str, Any],
                deadline_s: float) -> Rollout:
        """Start `image` for the team beside what serves now, wait until it is healthy (within
        `deadline_s`), then switch to it and retire the old version. On failure leave the old version
        serving, remove the new one, and return ok=False with the reason and the log tail.
        `secrets` values are `elfctl` Secret objects (masked str/repr); never store or print them."""
        ...

    def stop(self, team: str) -> bool:
        """Stop the team entirely (infra down). Returns whether anything was running."""
        ...

    def logs(self, team: str, tail: int = 100, follow: bool = False) -> Any:
        """An iterator of log lines of the serving version."""
        ...

    def status(self, team: str) -> dict[str, Any]:
        """For `elfctl health`: desired/ready replicas, worst condition and its reason, image."""
        ...


# --- Credential values (OS keyring, encrypted file) ---------------------------------------------


class Secrets(Protocol):
    """Where credential values live. Keys are opaque strings chosen by the credentials service;
    metadata (names, versions, dates, audit) lives in the Store, values only here."""

    name: str  # "keyring" | "file"
    where: str  # what holds the values, for messages: the file's path, the keyring's service

    def exists(self) -> bool:
        """Whether the backend holds its data (the file, the keyring's master key): a missing one
        the store says existed is an error, never silently a new empty one."""
        ...

    def get_many(self, keys: list[str]) -> dict[str, str | None]: ...

    def update(self, changes: dict[str, str | None]) -> None:
        """Set (str) or delete (None) entries; the file backend does it in one atomic write."""
        ...

    def master_key(self) -> bytes:
        """32 random bytes kept by the backend (created on first use): keys the audit HMAC."""
        ...
