"""Commit usage rows to the store from one background thread, so a call returns right after its spool
write instead of after a store transaction.

The spool line is the durability point: `Caller` writes it (synchronously) before returning, then
hands the row here. The writer takes every row queued so far and records them in one transaction
(usage rows, `daily_cost_summary`, spend counters and reservation settlement together, idempotent by
request id: `ledger.record`), then tells the spool they are recorded. Until then a row's reservation
stays in the counters at its worst case, so budgets still count it (a call that cost more than it
reserved is committed before the process reserves again: `flush_owed`). If the process dies first, the next start replays
its spool. `flush()` waits until everything queued is committed; it runs at exit too.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable

from elfctl.domain.usage import UsageRow
from elfctl.ports import Store
from elfctl.services.cost import ledger
from elfctl.services.llm.spool import Spool

log = logging.getLogger("elfctl.llm")

RETRIES = 5  # failed commits of one batch before its rows are left to the spool's replay
EXIT_FLUSH_S = 30.0


class Recorder:
    def __init__(self, store: Store, spool: Spool, warn: Callable[[str], None] | None = None):
        self.store, self.spool = store, spool
        self.warn = warn or (lambda msg: log.warning("%s", msg))
        self._cond = threading.Condition()
        self._pending: list[UsageRow] = []
        self._submitted = 0  # rows ever queued
        self._handled = 0  # rows committed (or left to the spool after RETRIES), in queue order
        self._owed = 0  # the last queued row that cost more than it reserved
        self._busy = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._failures = 0

    # -- callers ------------------------------------------------------------------------------
    def submit(self, row: UsageRow, owed: bool = False) -> None:
        """Queue a row that is already in the spool. `owed`: it cost more than its reservation, so
        `flush_owed` must see it committed."""
        with self._cond:
            self._ensure_thread()
            self._pending.append(row)
            self._submitted += 1
            if owed:
                self._owed = self._submitted
            self._cond.notify()

    def flush_owed(self) -> None:
        """Wait until every queued row that cost more than it reserved is committed."""
        if self._handled < self._owed and self._pid == os.getpid():
            self.flush()

    def idle(self) -> bool:
        """Whether every queued row is committed."""
        return self._handled >= self._submitted or self._pid != os.getpid()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row queued before this call is committed (or, after repeated failures,
        left to the spool's replay). Rows the writer has not taken yet are committed right here,
        sparing a thread switch. Returns False on timeout."""
        if self._handled >= self._submitted:  # the usual case: the writer is done
            return True
        with self._cond:
            if self._pid != os.getpid():
                return True  # a forked child: the queued rows are the parent's
            target = self._submitted
            rows: list[UsageRow] = []
            if self._pending and not self._busy:
                rows, self._pending, self._busy = self._pending, [], True
        if rows:
            self._commit_batch(rows)
        with self._cond:
            if self._thread is None or not self._thread.is_alive():  # interpreter shutting down
                while self._handled < target and self._pending and not self._busy:
                    rows, self._pending, self._busy = self._pending, [], True
                    self._cond.release()
                    try:
                        self._commit_batch(rows)
                    finally:
                        self._cond.acquire()
            return self._cond.wait_for(lambda: self._handled >= target, timeout)

    def close(self, timeout: float = EXIT_FLUSH_S) -> None:
        """Flush, then stop the writer thread (at exit and when the runtime is reset)."""
        self.flush(timeout)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            t = self._thread
        if t is not None and t is not threading.current_thread() and self._pid == os.getpid():
            t.join(timeout)

    # -- the writer ---------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        if self._pid != os.getpid():  # first use, or a forked child: the parent's rows are its own
            self._pending, self._busy, self._stop = [], False, False
            self._submitted = self._handled = self._owed = 0
            self._pid = os.getpid()
            atexit.register(self.close)  # registered after the spool's close, so it runs first
        self._thread = threading.Thread(target=self._run, name="elfctl-usage-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: (self._pending and not self._busy) or self._stop)
                if not self._pending or self._busy:
                    return
                rows, self._pending, self._busy = self._pending, [], True
            if not self._commit_batch(rows):
                time.sleep(min(2.0, 0.05 * 2**self._failures))

    def _commit_batch(self, rows: list[UsageRow]) -> bool:
        """Record one batch taken from the queue (the caller set _busy). On failure put it back
        (up to RETRIES, then leave it to the spool). Returns whether it was committed."""
        ok = False
        try:
            ledger.record(self.store, rows)
            ok = True
        except Exception as exc:  # noqa: BLE001 - the rows are safe in the spool; say so, retry
            self._failures += 1
            if self._failures > RETRIES:
                self._failures = 0
                self.warn(
                    f"could not record {len(rows)} LLM call(s) in the store ({exc}); they stay in "
                    f"{self.spool.folder} and are recorded at the next start"
                )
        else:
            self._failures = 0
            for r in rows:
                self.spool.done(r)
        with self._cond:
            if ok or self._failures == 0:  # committed, or given up on
                self._handled += len(rows)
            else:
                self._pending[:0] = rows
            self._busy = False
            self._cond.notify_all()
        return ok
