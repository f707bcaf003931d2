"""Retries with exponential backoff and full jitter (backoff library), always bounded by max_time.

A server's `Retry-After` wins over the computed wait (still capped by what is left of max_time);
errors that cannot succeed on retry (bad request, auth) give up at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import backoff


def _waits(base: float, cap: float, retry_after: Callable[[BaseException], float | None]):
    attempt = 0
    exc = yield  # primed by backoff with send(None)
    while True:
        hinted = retry_after(exc) if isinstance(exc, BaseException) else None
        wait = hinted if hinted is not None else random.uniform(0, min(cap, base * 2**attempt))
        attempt += 1
        exc = yield wait


def policy(
    transient: Callable[[BaseException], bool],
    retry_after: Callable[[BaseException], float | None],
    max_time: float = 30.0,
    max_tries: int = 4,
    base: float = 0.25,
    cap: float = 8.0,
    on_backoff: Callable[[dict], Any] | None = None,
):
    """A decorator (sync or async functions alike) retrying transient errors."""
    if not max_time or max_time <= 0:
        raise ValueError("a retry policy needs a positive max_time")
    return backoff.on_exception(
        _waits,
        Exception,
        max_time=max_time,
        max_tries=max_tries,
        jitter=None,
        giveup=lambda e: not transient(e),
        raise_on_giveup=True,
        on_backoff=on_backoff,
        logger=None,
        base=base,
        cap=cap,
        retry_after=lambda: retry_after,
    )
