"""`POST /v1/chat/completions` with `stream: true`: server-sent events in the chunk format the official
`openai` SDK parses (`data: {chunk}` per chunk, then `data: [DONE]`).

    stream_chat(caller, policy, body, request_id) -> AsyncIterator[bytes]   (a coroutine)
        Awaiting it opens the call (services/llm/stream.py): budget, fallback chain, breakers and
        retries until the first chunk. What fails there raises (an ElfError the route maps to an
        HTTP status), before any byte is sent. The iterator it returns gives the events; an error
        after the first byte ends the stream with `data: {"error": {...}}`, on which the SDK raises
        `openai.APIError`.
    relay(body, send, receive)
        Sends an iterator of bytes as the ASGI response body, and stops it as soon as the client goes
        away (uvicorn's `send` is silent after a disconnect, so only `receive` tells): the iterator is
        closed, which closes the upstream and settles the call with what was generated.

The upstream is always asked for its usage chunk (stream.open_stream); the client gets it only when
its own `stream_options.include_usage` asked for it, else it is stripped, with the `usage: null`
field the other chunks carry then.
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
from elfctl.services.llm.stream import Stream, open_stream

HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
DONE = b"data: [DONE]\n\n"

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def event(obj: Any) -> bytes:
    return b"data: " + _dumps(obj).encode() + b"\n\n"


async def stream_chat(caller: Caller, policy: Policy, body: dict, request_id: str) -> AsyncIterator[bytes]:
    wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    kwargs = {k: v for k, v in body.items() if k != "stream"}
    kwargs["request_id"] = request_id
    stream = await open_stream(caller, policy, kwargs)
    return _events(stream, wants_usage)


async def _events(stream: Stream, wants_usage: bool) -> AsyncIterator[bytes]:
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


async def relay(body: AsyncIterator[bytes], send, receive) -> None:
    async def pump() -> None:
        async with contextlib.aclosing(body):  # cancelled at a send, the body is still closed
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
