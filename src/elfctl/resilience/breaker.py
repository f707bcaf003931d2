"""Circuit breakers (pybreaker) whose state lives in the store, so every process sees one circuit.

`breaker_state.name` is `llm:<model>` for LLM calls (one circuit per model the team may call).
pybreaker's own async support is Tornado-only, so `guarded`/`aguarded` drive its state machine
around a plain call or an awaited coroutine the same way: the original error is raised to the
caller (the breaker only counts it); an open circuit raises `CircuitOpen` without calling.

Half-open admits one probe across processes: once the reset time has passed, each process that
wants to call tries to take the probe slot with one conditional UPDATE (`take_probe`); the one whose
UPDATE changed the row calls, every other one gets `CircuitOpen` (and falls back) until the probe's
outcome closes or re-opens the circuit. The slot lasts `probe_ttl_s` (`probe_until`), so a probe
whose process was killed mid-call frees it when that passes.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pybreaker

from elfctl.domain.clock import iso, now
from elfctl.errors import OperationFailed
from elfctl.ports import Store, runs_functions

T = TypeVar("T")


# How long a read "closed, no failures counted" is trusted without reading the store again. Another
# process opening the circuit is seen this much later at most; this process's own failures write
# through and drop the cached read at once.
FRESH_S = 1.0


class CircuitOpen(OperationFailed):
    """The circuit refuses calls. `retry_after`: seconds until a probe may be sent (None: it was
    isolated by hand and stays open until `elfctl breakers close`)."""

    code = "circuit_open"

    def __init__(self, message: str, hint: str | None = None, *, retry_after: float | None = None,
                 name: str = ""):
        super().__init__(message, hint)
        self.retry_after = retry_after
        self.name = name


# SQLite's statement of each transition elfctl_breaker_update names
_ASSIGN = {"state": "state = ?", "opened_at": "opened_at = ?", "fail+1": "fail_counter = fail_counter + 1",
           "success+1": "success_counter = success_counter + 1", "success=0": "success_counter = 0"}


class StoreBreakerStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker storage over the `breaker_state` table. Counters move with atomic UPDATEs."""

    def __init__(self, store: Store, name: str, fail_max: int | None = None, reset_timeout_s: float | None = None):
        super().__init__(name)
        self._store = store
        self._key = name
        self._clean_until = 0.0  # monotonic time until which a clean closed read is trusted
        # Postgres and Supabase: every write is one call of a database function (migration 0110,
        # the same statements), so it runs over Supabase's REST API too; SQLite runs the SQL.
        self._calls = runs_functions(store)
        if self._calls:
            store.call("elfctl_breaker_ensure", {"p_name": name, "p_at": iso(now()), "p_fail_max": fail_max,
                                                 "p_reset_timeout_s": reset_timeout_s})
            return
        store.execute(
            "INSERT INTO breaker_state (name, state, updated_at) VALUES (?, 'closed', ?) "
            "ON CONFLICT (name) DO NOTHING",
            (name, iso(now())),
        )
        if fail_max is not None:  # what its users declared, for `elfctl breakers list`
            store.execute(
                "UPDATE breaker_state SET fail_max = ?, reset_timeout_s = ? WHERE name = ? AND "
                "(fail_max IS NULL OR fail_max <> ? OR reset_timeout_s IS NULL OR reset_timeout_s <> ?)",
                (fail_max, reset_timeout_s, name, fail_max, reset_timeout_s),
            )

    def _get(self, col: str) -> Any:
        rows = self._store.select("breaker_state", {"name": self._key}, columns=col)  # REST too
        return rows[0][col] if rows else None

    def _set(self, op: str, value: str | None = None) -> None:
        """One transition: `op` names it as elfctl_breaker_update does ('state', 'opened_at' set
        `value`; 'fail+1', 'success+1', 'success=0')."""
        self._clean_until = 0.0
        if self._calls:
            self._store.call("elfctl_breaker_update", {"p_name": self._key, "p_op": op, "p_at": iso(now()),
                                                       "p_value": value})
            return
        self._store.execute(f"UPDATE breaker_state SET {_ASSIGN[op]}, updated_at = ? WHERE name = ?",
                            (*(() if value is None else (value,)), iso(now()), self._key))

    def snapshot(self) -> dict:
        rows = self._store.select("breaker_state", {"name": self._key},
                                  columns="state, fail_counter, opened_at, probe_until, held")
        return rows[0] if rows else {"state": pybreaker.STATE_CLOSED, "fail_counter": 0, "opened_at": None,
                                     "held": None}

    def take_probe(self, reset_timeout_s: float, ttl_s: float) -> bool:
        """Compare-and-swap: the circuit becomes half-open with this process's probe in flight if it
        is open past its reset time, or half-open with an expired (or unknown) probe. True when this
        process won the slot."""
        t = now()
        self._clean_until = 0.0
        if self._calls:
            return bool(self._store.call("elfctl_breaker_take_probe", {
                "p_name": self._key, "p_probe_until": iso(t + dt.timedelta(seconds=ttl_s)), "p_at": iso(t),
                "p_opened_before": iso(t - dt.timedelta(seconds=reset_timeout_s))}))
        won = self._store.execute(
            "UPDATE breaker_state SET state = 'half-open', probe_until = ?, success_counter = 0, "
            "updated_at = ? WHERE name = ? AND held IS NULL AND ("
            "(state = 'open' AND (opened_at IS NULL OR opened_at <= ?)) OR "
            "(state = 'half-open' AND (probe_until IS NULL OR probe_until <= ?)))",
            (
                iso(t + dt.timedelta(seconds=ttl_s)),
                iso(t),
                self._key,
                iso(t - dt.timedelta(seconds=reset_timeout_s)),
                iso(t),
            ),
        )
        return won == 1

    def clean_recently(self) -> bool:
        """Whether the circuit read closed with no failures within FRESH_S (no store read needed)."""
        return time.monotonic() < self._clean_until

    def mark_clean(self) -> None:
        self._clean_until = time.monotonic() + FRESH_S

    @property
    def state(self) -> str:
        return self._get("state") or pybreaker.STATE_CLOSED

    @state.setter
    def state(self, state: str) -> None:
        self._set("state", str(state))

    def increment_counter(self) -> None:
        self._set("fail+1")

    def reset_counter(self) -> None:
        # Called after every success: only write when there is something to reset.
        if self._calls:
            self._store.call("elfctl_breaker_update", {"p_name": self._key, "p_op": "fail=0", "p_at": iso(now())})
            return
        self._store.execute(
            "UPDATE breaker_state SET fail_counter = 0, updated_at = ? WHERE name = ? AND fail_counter <> 0",
            (iso(now()), self._key),
        )

    def increment_success_counter(self) -> None:
        self._set("success+1")

    def reset_success_counter(self) -> None:
        self._set("success=0")

    @property
    def counter(self) -> int:
        return int(self._get("fail_counter") or 0)

    @property
    def success_counter(self) -> int:
        return int(self._get("success_counter") or 0)

    @property
    def opened_at(self) -> dt.datetime | None:
        value = self._get("opened_at")
        return dt.datetime.fromisoformat(value) if value else None

    @opened_at.setter
    def opened_at(self, when: dt.datetime) -> None:
        self._set("opened_at", iso(when))


def _audit(cb: pybreaker.CircuitBreaker, before: str, after: str, exc: BaseException | None) -> None:
    """Record a transition this process caused (opened, re-opened, closed) in the actions trail. A
    process that only notices another's transition records nothing: one row per transition."""
    store = getattr(cb, "elf_store", None)
    if store is None or before == after or after == pybreaker.STATE_HALF_OPEN:
        return
    from elfctl.services.actions import trail

    if after == pybreaker.STATE_OPEN:
        why = type(exc).__name__ if exc is not None else "failure"
        trigger = (f"the probe call failed ({why})" if before == pybreaker.STATE_HALF_OPEN
                   else f"{cb.fail_max} failures in a row (last: {why})")
    else:
        trigger = "the probe call succeeded"
    try:
        trail.record(store, trail.Action(resource=cb.name, trigger=trigger, strategy="circuit_break",
                                         result="opened" if after == pybreaker.STATE_OPEN else "closed",
                                         actor=cb.elf_actor, target=cb.name))
    except Exception as exc:  # noqa: BLE001 - the audit row must not change the call's outcome
        import logging

        logging.getLogger("elfctl.resilience").warning("breaker %s: transition not audited: %s", cb.name, exc)


def make(
    store: Store, name: str, fail_max: int = 5, reset_timeout_s: float = 60, probe_ttl_s: float = 60,
    actor: str = "elfctl.resilience",
) -> pybreaker.CircuitBreaker:
    """`probe_ttl_s`: the longest a probe call may take; past it another process may probe."""
    cb = pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_timeout_s,
        name=name,
        state_storage=StoreBreakerStorage(store, name, fail_max, reset_timeout_s),
    )
    cb.elf_store, cb.elf_actor = store, actor
    cb.probe_ttl_s = probe_ttl_s
    return cb


def _probe_in(cb: pybreaker.CircuitBreaker, row: dict) -> float:
    """Seconds until a probe may be sent: the reset time of an open circuit, the slot of the probe in
    flight of a half-open one (0 or less: now)."""
    if row["state"] == pybreaker.STATE_HALF_OPEN:
        until = row.get("probe_until")
        end = dt.datetime.fromisoformat(until) if until else None
    else:
        opened = row["opened_at"]
        end = dt.datetime.fromisoformat(opened) + dt.timedelta(seconds=cb.reset_timeout) if opened else None
    return (end - now()).total_seconds() if end else 0.0


def _still_open(cb: pybreaker.CircuitBreaker, row: dict) -> CircuitOpen:
    if row.get("held"):
        return CircuitOpen(f"circuit {cb.name} was opened by hand ({row['held']})",
                           hint=f"`elfctl breakers close {cb.name}` lets calls through again", name=cb.name)
    wait = max(0.0, _probe_in(cb, row))
    if row["state"] == pybreaker.STATE_HALF_OPEN:
        return CircuitOpen(
            f"circuit {cb.name} is half-open: another call is probing the provider",
            hint=f"its outcome closes or re-opens the circuit within {wait:.0f}s",
            retry_after=wait, name=cb.name,
        )
    return CircuitOpen(
        f"circuit {cb.name} is open after repeated failures",
        hint=f"a probe call is allowed in {wait:.0f}s",
        retry_after=wait, name=cb.name,
    )


def _before(cb: pybreaker.CircuitBreaker) -> bool:
    """Refuse the call while the circuit is open; returns whether the circuit was closed with no
    failures counted (then a success needs no bookkeeping). A clean read is trusted for FRESH_S, so
a steady stream of calls reads the store about once a second."""
    storage = cb._state_storage
    if isinstance(storage, StoreBreakerStorage) and storage.clean_recently():
        return True
    with cb._lock:
        row = storage.snapshot()
        if row.get("held"):
            raise _still_open(cb, row)
        if row["state"] in (pybreaker.STATE_OPEN, pybreaker.STATE_HALF_OPEN):
            if _probe_in(cb, row) > 0:  # read first: no write while the answer is plainly no
                raise _still_open(cb, row)
            if not storage.take_probe(cb.reset_timeout, getattr(cb, "probe_ttl_s", cb.reset_timeout)):
                raise _still_open(cb, storage.snapshot())  # another process's probe won the slot
            return False  # this call is the probe; _after closes or re-opens the circuit
        clean = row["state"] == pybreaker.STATE_CLOSED and not row["fail_counter"]
        if clean and isinstance(storage, StoreBreakerStorage):
            storage.mark_clean()
        return clean


def _after(cb: pybreaker.CircuitBreaker, exc: BaseException | None, clean: bool = False) -> None:
    if exc is None and clean:
        return  # closed, nothing counted: pybreaker would only reset a zero counter
    with cb._lock:
        state = cb.state
        before = state.name
        try:
            if exc is None:
                state._handle_success()
            else:
                state._handle_error(exc, reraise=False)
        except pybreaker.CircuitBreakerError:
            pass  # the circuit just opened; the caller gets the original error
        _audit(cb, before, cb._state.name, exc)


def guarded(
    cb: pybreaker.CircuitBreaker,
    fn: Callable[..., T],
    *args: Any,
    counts: Callable[[BaseException], bool] = lambda e: True,
    **kwargs: Any,
) -> T:
    """Call fn through the breaker. `counts(exc)`: whether this failure says the provider is unwell
    (a 400 from bad input does not)."""
    clean = _before(cb)
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        _after(cb, exc if counts(exc) else None, clean)
        raise
    _after(cb, None, clean)
    return result


async def aguarded(
    cb: pybreaker.CircuitBreaker,
    fn: Callable[..., Awaitable[T]],
    *args: Any,
    counts: Callable[[BaseException], bool] = lambda e: True,
    **kwargs: Any,
) -> T:
    """As guarded; the breaker's state lives in the store, so it is read and written on a worker
    thread, never on the event loop."""
    import asyncio

    storage = cb._state_storage
    # A circuit read clean within FRESH_S needs no store work before the call, nor after a success:
    # no thread hand-off then (it cost ~0.7 ms a call).
    clean = storage.clean_recently() if isinstance(storage, StoreBreakerStorage) else False
    if not clean:
        clean = await asyncio.to_thread(_before, cb)
    try:
        result = await fn(*args, **kwargs)
    except BaseException as exc:
        await asyncio.to_thread(_after, cb, exc if counts(exc) else None, clean)
        raise
    if not clean:
        await asyncio.to_thread(_after, cb, None, clean)
    return result
