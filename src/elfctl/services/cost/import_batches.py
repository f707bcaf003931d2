"""A strict `cost import` in short transactions that stays all or nothing (migration 0062).

One transaction for a whole file held SQLite's write lock for as long as the import ran (11 s for
400k rows), so a budgeted LLM call started meanwhile gave up after the busy timeout. Instead the file
is read twice: first only checked (a bad row fails the import with nothing written), then recorded
in batches of BATCH rows tagged with the import's id (`api_usage.import_id`), each batch with its
rollup and counter changes in its own transaction, so rollups stay exact at every step. While the
second pass runs, the rows recorded so far are visible. An import that fails in that pass (the file
changed, the store refused a batch), or whose process died (kill -9, crash), is undone by its id:
its rows are deleted with their rollups and counters, in batches too. A dead holder's import is
undone by the next `cost import` or `cost reconcile` (`recover`); a live one never is.

The `Pacer` leaves SQLite's write lock free after each batch for at least as long as the batch held
it: the busy handler of a waiting writer polls at most every 100 ms, so it finds the lock free within
a few polls instead of starving behind back-to-back batches.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from elfctl import liveness
from elfctl.domain.clock import iso, now
from elfctl.domain.usage import UsageRow
from elfctl.errors import ElfError, OperationFailed
from elfctl.ports import Store, Tx
from elfctl.services.cost import ledger

BATCH = 2000
STALE_S = 120.0  # a holder on another host whose heartbeat is older than this is gone


class Pacer:
    """Transactions that hold the store's write lock at most about half the time (see above)."""

    def __init__(self, store: Store):
        self.store = store
        self.free_until = 0.0
        self.longest = 0.0  # the longest transaction so far, in seconds

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        wait = self.free_until - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        start = time.monotonic()
        with self.store.transaction() as tx:
            yield tx
        end = time.monotonic()
        self.longest = max(self.longest, end - start)
        # Postgres has no store-wide write lock and queues lock waiters fairly: no pause needed.
        self.free_until = end + (end - start) if self.store.dialect == "sqlite" else 0.0


class ImportTakenOver(OperationFailed):
    """Another elfctl took this import for dead and undid it (code "failed", exit 1)."""


@dataclass
class StrictImport:
    store: Store
    id: str
    owner: str
    pacer: Pacer
    recorded: int = 0
    state: str = "recording"

    def _beat_in(self, tx: Tx, state: str | None = None) -> None:
        """Heartbeat, count and state in the batch's transaction, fenced by the owner token: a holder
        that was taken for dead (and undone) stops at its next batch."""
        new_state = state or self.state
        n = tx.execute(
            "UPDATE usage_imports SET heartbeat_at = ?, rows_recorded = ?, state = ? "
            "WHERE id = ? AND owner = ? AND state = ?",
            (iso(now()), self.recorded, new_state, self.id, self.owner, self.state),
        )
        if n != 1:
            raise ImportTakenOver(
                f"import {self.id} was taken for dead and undone by another elfctl; nothing of it stays",
                hint="run the import again")
        self.state = new_state

    def record(self, rows: Sequence[UsageRow]) -> int:
        """Record one batch under this import's id; returns how many rows were new."""
        with self.pacer.transaction() as tx:
            n = ledger.record_in(tx, rows, import_id=self.id)
            self.recorded += len(rows)
            self._beat_in(tx)
        return n

    def done(self) -> None:
        with self.pacer.transaction() as tx:
            self._beat_in(tx, "done")

    def undo(self) -> None:
        """Delete the rows this import recorded, with their rollups and counters, in batches."""
        with self.pacer.transaction() as tx:
            self._beat_in(tx, "undoing")
        while True:
            with self.pacer.transaction() as tx:
                n = ledger.remove_import_in(tx, self.id, BATCH)
                self._beat_in(tx)
                if n == 0:  # undone: as if it never ran
                    tx.execute("DELETE FROM usage_imports WHERE id = ?", (self.id,))
                    return


def _holder() -> tuple:
    me = liveness.me()
    return me.host, me.pid, me.started, me.pidns


def begin(store: Store, file: str) -> StrictImport:
    imp = StrictImport(store, "imp-" + uuid.uuid4().hex[:16], uuid.uuid4().hex, Pacer(store))
    stamp = iso(now())
    store.execute(
        "INSERT INTO usage_imports (id, file, state, owner, host, pid, pid_started, pidns, started_at, "
        "heartbeat_at) VALUES (?, ?, 'recording', ?, ?, ?, ?, ?, ?, ?)",
        (imp.id, file, imp.owner, *_holder(), stamp, stamp),
    )
    return imp


def _gone(row: dict, t: dt.datetime) -> bool:
    writer = liveness.Writer(row["host"], int(row["pid"]), row["pid_started"], row["pidns"])
    return liveness.gone(writer, (t - dt.datetime.fromisoformat(row["heartbeat_at"])).total_seconds(), STALE_S)


def recover(store: Store) -> list[str]:
    """Undo every strict import whose process is gone; returns their ids."""
    undone = []
    t = now()
    for row in store.query(
        "SELECT id, state, owner, host, pid, pid_started, pidns, heartbeat_at, rows_recorded "
        "FROM usage_imports WHERE state IN ('recording', 'undoing') ORDER BY started_at"
    ):
        if not _gone(row, t):
            continue
        owner = uuid.uuid4().hex
        # Compare-and-swap on the dead holder's owner token: of two recoverers one takes it.
        taken = store.execute(
            "UPDATE usage_imports SET owner = ?, host = ?, pid = ?, pid_started = ?, pidns = ?, "
            "heartbeat_at = ? WHERE id = ? AND owner = ?",
            (owner, *_holder(), iso(now()), row["id"], row["owner"]),
        )
        if taken != 1:
            continue
        imp = StrictImport(store, row["id"], owner, Pacer(store), int(row["rows_recorded"]), row["state"])
        imp.undo()
        undone.append(imp.id)
    return undone


def undo_quietly(imp: StrictImport, exc: BaseException) -> None:
    """Undo a failed import; if that fails too, say who will (the next import or reconcile)."""
    if isinstance(exc, ImportTakenOver):  # undone already by the one that took it
        return
    try:
        imp.undo()
    except ElfError as again:
        if isinstance(exc, ElfError):
            exc.message += (f" (undoing import {imp.id} failed too: {again.message}; the next `elfctl cost "
                            "import` or `cost reconcile` removes its rows)")
