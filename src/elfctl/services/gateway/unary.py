"""A non-streamed call (chat completion, embeddings) made the way a stream is (services/llm/stream.py),
on the Caller's call path: its store work (keys, the reservation, breakers) on the handler's worker
thread (`start`), then the provider's exchange on the event loop through the adapter's asyncio
connection pool (`finish`), so no worker thread waits on the provider and nothing hops back to a
thread after it when there is no store work left.

    start(caller, policy, kwargs) -> started        # blocks: call it on a worker thread
    await finish(caller, started) -> the response    # on the event loop

After a successful attempt with the background writer (`llm.record = "background"`), settling the call
is the spool and the writer's queue (Caller._finish): done on the loop. Anything else (a failed attempt
releases its reservation and may reserve for the next model; a synchronous record) runs on a worker
thread, as Caller.acall does it."""

from __future__ import annotations

import asyncio
from typing import Any

from elfctl.services.llm.call import Caller, Policy, _step


def start(caller: Caller, policy: Policy, kwargs: dict):
    return caller._prelude(policy, kwargs)


async def finish(caller: Caller, started) -> Any:
    walk, keyed, attempts, (finished, value) = started
    while not finished:
        try:
            outcome = ("ok", await attempts[value](keyed[value]))
        except Exception as exc:  # noqa: BLE001 - the walk decides: next model or raise
            outcome = ("err", exc)
        if outcome[0] == "ok" and caller.settings.record == "background":
            finished, value = _step(walk, outcome)
        else:
            finished, value = await asyncio.to_thread(_step, walk, outcome)
    return value
