"""`@circuit_breaker(name)`: a pybreaker circuit whose state lives in the store (breaker.py), so
every process and replica sharing the store sees one circuit, and a process that starts anew
neither resets nor forgets its counters.

    @circuit_breaker("payments-api", fail_max=5, reset_timeout=60)
    def charge(...): ...

While open it raises `CircuitOpen` (with `retry_after`, the seconds until a probe may be sent) without
calling. Which failures count: `counts(exc)` (default: the retriable ones of classify, so a 404 or a
bad request does not open the circuit).

Happy-path cost: a closed circuit with no failures counted is read from the store at most once per
`breaker.FRESH_S` (1 s) per process; a success then writes nothing. So another process opening the
circuit (or `elfctl breakers open`) is seen here at most FRESH_S later; this process's own failures
write through at once.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

from elfctl.resilience import breaker as brk
from elfctl.resilience import classify, runtime

_lock = threading.Lock()
_breakers: dict[tuple[int, str], Any] = {}  # (id of store, name) -> pybreaker.CircuitBreaker


def get(name: str, fail_max: int = 5, reset_timeout: float = 60, store: Any = None,
        probe_ttl: float | None = None) -> Any:
    """The process's breaker `name` on `store` (default: the resilience runtime's store)."""
    store = store if store is not None else runtime.store()
    key = (id(store), name)
    with _lock:
        cb = _breakers.get(key)
        if cb is None or cb.elf_store is not store:
            cb = _breakers[key] = brk.make(store, name, fail_max, reset_timeout,
                                           probe_ttl if probe_ttl is not None else max(reset_timeout, 1.0))
        return cb


def check_name(name: str) -> str:
    if not isinstance(name, str) or not name or len(name) > 200 or not name.isprintable():
        raise ValueError(f"circuit breaker name must be 1..200 printable characters, got {name!r}")
    return name


def circuit_breaker(name: str, fail_max: int = 5, reset_timeout: float = 60, *, store: Any = None,
                    counts: Callable[[BaseException], bool] = classify.is_retriable,
                    probe_ttl: float | None = None) -> Callable[[Callable], Callable]:
    """Guard a sync or async function with the shared circuit `name`. `probe_ttl`: the longest a
    probe call may run before another process may probe (default: reset_timeout)."""
    check_name(name)
    if fail_max < 1 or reset_timeout <= 0:
        raise ValueError("circuit_breaker: fail_max must be >= 1 and reset_timeout > 0")

    def decorate(fn: Callable) -> Callable:
        built: list[Any] = []  # [(runtime generation, breaker)]: rebuilt when the runtime's store changes

        def cb():
            if built and (store is not None or built[0][0] == runtime.generation):
                return built[0][1]
            generation = runtime.generation
            breaker = get(name, fail_max, reset_timeout, store, probe_ttl)
            built[:] = [(generation, breaker)]
            return breaker

        if inspect.iscoroutinefunction(fn):

            async def arun(*args: Any, **kwargs: Any) -> Any:
                import asyncio

                fresh = built and (store is not None or built[0][0] == runtime.generation)
                breaker = built[0][1] if fresh else await asyncio.to_thread(cb)  # building writes its row
                return await brk.aguarded(breaker, fn, *args, counts=counts, **kwargs)

            wrapper = functools.wraps(fn)(arun)
        else:

            def run(*args: Any, **kwargs: Any) -> Any:
                return brk.guarded(cb(), fn, *args, counts=counts, **kwargs)

            wrapper = functools.wraps(fn)(run)
        wrapper.breaker = cb
        return wrapper

    return decorate
