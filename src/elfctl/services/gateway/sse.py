"""`POST /v1/chat/completions` with `stream: true`: server-sent events in the chunk format the official
`openai` SDK parses (`data: {chunk}` per chunk, then `data: [DONE]`).

    respond(gateway, policy, kwargs) -> (200, headers, events)
        The route's answer (on a worker thread). `events` is an async iterator of bytes whose first
        item opens the call (services/llm/stream.py: budget, fallback chain, breakers and retries
        until the provider's first chunk). The server awaits that first item before it sends the
        status (asgi.Server), so what fails there (an ElfError) is an ordinary HTTP error. An error
        after the first byte ends the stream with `data: {"error": {...}}`, which the SDK raises as
        `openai.APIError`.
    relay(start, first, body, send, receive)
        Sends the response (start message, the first part, then the rest as it comes) and stops as
        soon as the client goes away: uvicorn's `send` is silent after a disconnect, only `receive`
        tells. The body is then closed, which closes the upstream (it stops generating) and settles
        the call with what was generated.

The upstream is always asked for its usage chunk (stream.open_stream); the client gets it only when
its own `stream_options.include_usage` asked for it, else it is stripped, with the `usage: null`
field the other chunks then carry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from elfctl.errors import ElfError
from elfctl.services.gateway import errors
from elfctl.services.llm.call import Caller, Policy
from elfctl.services.llm.stream import open_stream

HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
DONE = b"data: [DONE]\n\n"

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def event(obj: Any) -> bytes:
    return b"data: " + _dumps(obj).encode() + b"\n\n"


def respond(gateway: Any, policy: Policy, kwargs: dict) -> tuple[int, dict[str, str], AsyncIterator[bytes]]:
    wants_usage = bool((kwargs.get("stream_options") or {}).get("include_usage"))
    headers = {**HEADERS, "x-request-id": str(kwargs.get("request_id") or "")}
    return 200, headers, events(gateway.caller, policy, kwargs, wants_usage)


async def events(caller: Caller, policy: Policy, kwargs: dict, wants_usage: bool) -> AsyncIterator[bytes]:
    stream = await open_stream(caller, policy, kwargs)  # raises from the first anext: no byte sent yet
    try:
        async for chunk in stream:
            if not wants_usage and "usage" in chunk:
                if not chunk.get("choices"):
                    continue  # the usage chunk the client did not ask for
                del chunk["usage"]
            yield event(chunk)
    except ElfError as exc:  # after the first byte: the status is sent, the error goes in the stream
        yield b"data: " + errors.from_elf(exc).body() + b"\n\n"
        return
    finally:
        await stream.aclose()
    yield DONE


async def relay(start: dict, first: bytes, body: AsyncIterator[bytes], send, receive) -> None:
    async def pump() -> None:
        async with contextlib.aclosing(body):  # cancelled at a send, the body is still closed
            await send(start)
            await send({"type": "http.response.body", "body": first, "more_body": True})
            async for part in body:
                await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    sending, watching = asyncio.ensure_future(pump()), asyncio.ensure_future(gone())
    try:
        await asyncio.wait((sending, watching), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watching.cancel()
        if not sending.done():
            sending.cancel()  # the client left: the upstream is closed, the call settled
        # The request ends once the call is settled (its recording is not cut short).
        await asyncio.gather(sending, watching, return_exceptions=True)
    if not sending.cancelled() and sending.exception() is not None:
        raise sending.exception()
