"""`POST /v1/chat/completions` with `stream: true`: server-sent events in the chunk format the official
`openai` SDK parses (`data: {chunk}` per chunk, then `data: [DONE]`).

    respond(gateway, policy, kwargs) -> (200, headers, events)
        The route's answer (on a worker thread). `events` is an async iterator of bytes whose first
        item opens the call (services/llm/stream.py: budget, fallback chain, breakers and retries
        until the provider's first chunk). The server awaits that first item before it sends the
        status (asgi.Server._http), so what fails there (an ElfError) is an ordinary HTTP error. An
        error after the first byte ends the stream with `data: {"error": {...}}`, which the SDK
        raises as `openai.APIError`. A client that goes away has the iteration cancelled by the
        server (asgi.Server._stream): the upstream is closed (it stops generating) and the call is
        settled with what was generated.

The upstream is always asked for its usage chunk (stream.start); the client gets it only when
its own `stream_options.include_usage` asked for it, else it is stripped, with the `usage: null`
field the other chunks then carry.

An OpenAI-protocol provider's chunks are forwarded as the bytes it sent (stream.py passes them on
unparsed); only the usage chunk is parsed, and re-encoded when it must change. The call's store work
(the reservation) runs in respond, on the handler's worker thread, so the stream itself needs no
thread hand-off before its first byte.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from elfctl.errors import ElfError
from elfctl.services.gateway import errors
from elfctl.services.llm import stream as llm_stream
from elfctl.services.llm.call import Caller, Policy

HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
DONE = b"data: [DONE]\n\n"

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def event(obj: Any) -> bytes:
    return b"data: " + _dumps(obj).encode() + b"\n\n"


def respond(gateway: Any, policy: Policy, kwargs: dict) -> tuple[int, dict[str, str], AsyncIterator[bytes]]:
    options = kwargs.get("stream_options")
    if options is not None and not (isinstance(options, dict) and set(options) <= {"include_usage"}
                                    and isinstance(options.get("include_usage", False), bool)):
        raise errors.ApiError(400, f"stream_options must be an object like {{\"include_usage\": true}}, got "
                              f"{json.dumps(options)[:100]}", code="invalid_type", param="stream_options")
    wants_usage = bool((options or {}).get("include_usage"))
    headers = {**HEADERS, "x-request-id": str(kwargs.get("request_id") or "")}
    started = llm_stream.start(gateway.caller, policy, kwargs)  # an exhausted budget raises here: a 429
    return 200, headers, events(gateway.caller, policy, kwargs, wants_usage, started)


def _without_null_usage(raw: bytes) -> bytes | None:
    """The chunk without its `"usage":null` field, or None if it is not spelled as OpenAI spells it."""
    for field in (b',"usage":null', b'"usage":null,'):
        if field in raw:
            return raw.replace(field, b"", 1)
    return None


async def events(caller: Caller, policy: Policy, kwargs: dict, wants_usage: bool,
                 started=None) -> AsyncIterator[bytes]:
    # raises from the first anext: no byte sent yet
    stream = await llm_stream.open_stream(caller, policy, kwargs, started)
    try:
        async for chunk in stream:
            if isinstance(chunk, bytes):  # the provider's own, with no usage object (stream.py)
                if wants_usage or b'"usage"' not in chunk:
                    yield b"data: " + chunk + b"\n\n"
                    continue
                stripped = _without_null_usage(chunk)
                if stripped is not None:
                    yield b"data: " + stripped + b"\n\n"
                    continue
                chunk = json.loads(chunk)
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
