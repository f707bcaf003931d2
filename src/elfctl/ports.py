"""Ports: the small interfaces services need from outside systems, no more.

Adapters implement them; services type against them; tests hand in real or fake ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
        """A cross-process lock held for the block (Postgres: session advisory lock; behind a transaction
        pooler a transaction-scoped one on a connection of its own). On SQLite the
        write lock of `transaction()` already serialises writers, so this may be a no-op."""
        ...

    def tables(self) -> list[str]: ...

    def server_version(self) -> str: ...

    def close(self) -> None: ...


class Functions(Protocol):
    """A store that runs elfctl's database functions: PostgreSQL directly (`SELECT fn(...)`) and
    Supabase over REST (`rpc`). The atomic operations (reserve, settle, record, breaker transitions,
    heartbeat, key lookup) and the report aggregates are one call into the database each, never a
    read-modify-write from the client. SQLite has no functions: services keep their SQL there."""

    def call(self, fn: str, args: dict[str, Any]) -> Any:
        """Run `public.<fn>` with named arguments; returns its result (JSON-decoded for jsonb)."""
        ...


def runs_functions(store: object) -> bool:
    """Whether a store (or an open transaction on one) runs elfctl's database functions: the one
    test services branch on, by capability, for each atomic operation (else: their SQLite SQL)."""
    return callable(getattr(store, "call", None))


class Rows(Protocol):
    """Table and view access that every store can serve, Supabase's REST API included: equality
    filters, order, limit. What needs more (joins, aggregates, locks) is a database function."""

    def select(self, relation: str, where: dict[str, Any] | None = None, *, columns: str = "*",
               order: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """`order` is PostgREST's grammar: "col.desc,other.asc"."""
        ...

    def upsert(self, relation: str, rows: Sequence[dict[str, Any]], *, on_conflict: str,
               ignore_duplicates: bool = False) -> None: ...


# --- Deploy targets (Docker, Kubernetes) --------------------------------------------------------
# The deploy service (lock, state machine, build/push, history, rollback decisions) is the same for
# every target; a target only knows how to run a given image of a team and report on it.


class Rollout(Protocol):
    """What a target reports after trying to put an image into service."""

    ok: bool  # True: the new version serves (health gate / rollout status passed)
    reason: str  # why not, or what happened ("3/3 replicas ready", "health gate: 500 from /health")
    logs: str  # last lines of the new version's log when it failed ("" otherwise)
    warnings: list[str]  # e.g. IETF health `warn` seen during the gate
    retired: list[str]  # old replicas stopped after the switch ([] where the cluster replaces them)
    leftovers: list[str]  # replicas found not serving when the rollout began, removed too ([] likewise)


class DeployTarget(Protocol):
    """Everything the deploy service and `infra`/`health` rely on: every target implements all of it
    (tests/contract runs one suite against each), with an honest None/no-op where a part does not
    apply. Nothing is probed with getattr/hasattr."""

    name: str  # "docker" | "kubernetes"
    # The deploy service hands rollout() `repo:tag@sha256:...` (the push done first) when True:
    # a cluster's nodes must pull exactly what was pushed. False: `repo:tag`, pushed beside the gate.
    pins_digest: bool
    # Whether rollout() runs the image from this machine's engine (so it must be there) rather than
    # having the nodes pull it from the registry.
    needs_local_image: bool

    def prepare(self) -> tuple[bool, str]:
        """`infra up` step: make the target ready (network / namespace, pull secret ...).
        Idempotent: returns (changed, details)."""
        ...

    def set_progress(self, callback: Callable[[str], None] | None) -> None:
        """Report rollout phases ("starting", "verifying", "switched") to `callback` (None: stop)."""
        ...

    def serving(self, team: str) -> str | None:
        """The image reference currently serving this team (`repo:tag`), or None."""
        ...

    def rollout(self, spec: Any, image: str, revision: int, env: dict[str, str], secrets: dict[str, Any],
                deadline_s: float, before_switch: Callable[[], None] | None = None) -> Rollout:
        """Start `image` for the team beside what serves now, wait until it is healthy (within
        `deadline_s`), then switch to it and retire the old version. On failure leave the old version
        serving, remove the new one, and return ok=False with the reason and the log tail.
        `before_switch()` is called once, right before anything serves the new version (after the
        gate where the target gates before switching, before applying where the cluster switches as
        it rolls out); if it raises, nothing is switched, the new version is removed and the error
        goes up. `secrets` values are `elfctl` Secret objects (masked str/repr); never store or print
        them."""
        ...

    def stop(self, team: str) -> bool:
        """Stop the team entirely (infra down). Returns whether anything was running."""
        ...

    def teams(self) -> list[str]:
        """The teams this target runs for the project (infra down)."""
        ...

    def logs(self, team: str, tail: int = 100, follow: bool = False) -> Iterator[str]:
        """An iterator of log lines of the serving version."""
        ...

    def status(self, team: str) -> dict[str, Any]:
        """For `elfctl health`: desired/ready replicas, status (pass/warn/fail) and its reason, image,
        revision, and host_port (None where nothing is published on this machine)."""
        ...

    def host_port(self, team: str) -> int | None:
        """The port on this machine users reach the team at, or None (a cluster Service)."""
        ...

    def endpoint_health(self, team: str, path: str, timeout: float = 2.0,
                        endpoints: list[str] | None = None) -> list[tuple[str, str, str]] | None:
        """(replica, outcome pass/warn/fail, reason) of one GET of `path` on each serving replica, or
        None where the target does not reach replicas itself (a cluster: the kubelet's readiness
        probe does). `endpoints`: what status() returned under that key, if anything."""
        ...

    def scale(self, team: str, replicas: int) -> int:
        """Run `replicas` (>= 1) replicas of what serves the team now (same image, revision and
        settings), without a deploy; returns how many served before. The resource monitor's
        scale_down policy and its restore use it. OperationFailed when nothing serves the team."""
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
