"""Retries with exponential backoff and full jitter (backoff's `expo` and `full_jitter`), inside one
time budget.

Each run of a policy gets a `Deadline` of `max_time` seconds, passed to the wrapped function as the
keyword `deadline`: the function must not outlive it (the LLM call sets each attempt's timeout to
`deadline.left()`). A retry waits the server's `Retry-After`, else the jittered backoff; when what is
left after that wait is under `MIN_ATTEMPT_S`, no further attempt starts and the last error is raised at
once, so the caller's fallback begins within the budget. Errors that cannot succeed on retry (bad
request, auth) are raised at once.

backoff's own `on_exception(max_time=...)` cannot give this guarantee: it measures the elapsed time
before each attempt, not after it, so an attempt that timed out is retried although the budget is
spent (a hung provider cost two full 30 s timeouts on a 20 s budget).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import backoff

# An attempt with less than this left of its budget is not started: it could only time out.
MIN_ATTEMPT_S = 0.25


class Deadline:
    """A moment on the monotonic clock (or a test's fake clock) that one run of a policy must end by."""

    __slots__ = ("end", "clock")

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.end = clock() + seconds

    def left(self) -> float:
        return max(0.0, self.end - self.clock())


class Policy:
    def __init__(
        self,
        transient: Callable[[BaseException], bool],
        retry_after: Callable[[BaseException], float | None],
        max_time: float,
        max_tries: int,
        base: float,
        cap: float,
        fixed: bool = False,
        jitter: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
        asleep: Callable[[float], Any] | None = None,
        pass_deadline: bool = True,
    ):
        """`fixed`: every wait is `base` (backoff.constant), else exponential from `base` up to `cap`;
        `jitter`: full jitter on the exponential waits. `clock`/`sleep`/`asleep`: a test's fake clock.
        `pass_deadline`: hand the run's Deadline to fn as the keyword `deadline`."""
        if not max_time or max_time <= 0:
            raise ValueError("a retry policy needs a positive max_time")
        self.transient, self.retry_after = transient, retry_after
        self.max_time, self.max_tries, self.base, self.cap = max_time, max_tries, base, cap
        self.fixed, self.jitter, self.pass_deadline = fixed, jitter, pass_deadline
        self.clock, self.sleep, self.asleep = clock, sleep, asleep

    def _waits(self):
        if self.fixed:
            waits = backoff.constant(interval=self.base)
        else:
            waits = backoff.expo(base=2, factor=self.base, max_value=self.cap)
        next(waits)  # backoff's generators are primed with one send(None)
        return waits

    def _pause(self, exc: BaseException, tries: int, deadline: Deadline, waits: list) -> float | None:
        """Seconds to wait before the next attempt, or None: raise `exc` now. `waits`: [] until the
        first failure builds the run's backoff generator (a success never pays for it)."""
        if tries >= self.max_tries or not self.transient(exc):
            return None
        hinted = self.retry_after(exc)
        if hinted is None:
            if not waits:
                waits.append(self._waits())
            step = next(waits[0])
            wait = backoff.full_jitter(step) if self.jitter and not self.fixed else step
        else:
            wait = max(0.0, hinted)
        # A wait that leaves no room for an attempt ends the run now: the caller's fallback starts
        # within the budget instead of after a sleep that could only end in a refused attempt.
        return wait if deadline.left() - wait >= MIN_ATTEMPT_S else None

    def _kw(self, deadline: Deadline, kwargs: dict) -> dict:
        return {**kwargs, "deadline": deadline} if self.pass_deadline else kwargs

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorate `fn(*args, deadline=...)`, sync or async."""
        import inspect

        if inspect.iscoroutinefunction(fn):

            async def arun(*args: Any, **kwargs: Any) -> Any:
                import asyncio

                asleep = self.asleep or asyncio.sleep
                deadline, waits, tries = Deadline(self.max_time, self.clock), [], 0
                while True:
                    tries += 1
                    try:
                        return await fn(*args, **self._kw(deadline, kwargs))
                    except Exception as exc:  # noqa: BLE001 - _pause decides: retry or raise
                        wait = self._pause(exc, tries, deadline, waits)
                        if wait is None:
                            raise
                    await asleep(wait)

            return functools.wraps(fn)(arun)

        def run(*args: Any, **kwargs: Any) -> Any:
            deadline, waits, tries = Deadline(self.max_time, self.clock), [], 0
            while True:
                tries += 1
                try:
                    return fn(*args, **self._kw(deadline, kwargs))
                except Exception as exc:  # noqa: BLE001
                    wait = self._pause(exc, tries, deadline, waits)
                    if wait is None:
                        raise
                self.sleep(wait)

        return functools.wraps(fn)(run)


def policy(
    transient: Callable[[BaseException], bool],
    retry_after: Callable[[BaseException], float | None],
    max_time: float = 30.0,
    max_tries: int = 4,
    base: float = 0.25,
    cap: float = 8.0,
) -> Policy:
    """A decorator (sync or async functions alike) retrying transient errors within `max_time`
    seconds, attempts and waits included."""
    return Policy(transient, retry_after, max_time, max_tries, base, cap)
