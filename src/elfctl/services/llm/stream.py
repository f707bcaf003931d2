"""A streamed LLM call (`stream: true`) on the Caller's call path (services/llm/call.py).

Until its first chunk arrives a streamed call is an ordinary one: the budget reserves its worst case,
the team's fallback chain, the store-shared breakers and the retries apply, each attempt being "open
the stream and read its first chunk" within the attempt's timeout. So every failure there is raised
before anything reached the client (the gateway answers it with an HTTP status). From the first chunk
on the model is chosen: chunks pass through as they arrive, and the call is settled once, at its end,
through the same walk (`Caller._drive` -> `_finish`: usage row, reservation settled):
  - with the upstream's own usage chunk: it is always asked for (`stream_options.include_usage`);
  - else (the client went away, the upstream went quiet for the call's timeout, or broke, or sent no
    usage) with the tokens of what arrived: the prompt and the generated text counted as the
    reservation counts (litellm's counter), so nothing is charged that was not generated.
The upstream is closed as soon as the stream ends for any reason, so it stops generating.

Chunks are dicts (litellm's) or, from an OpenAI-protocol provider, the JSON bytes it sent: those are
passed on unparsed (the gateway forwards them as they are), except a chunk carrying a usage object,
which is parsed and passed on as a dict. A chunk's text is read from its bytes only if the call is
settled without the upstream's usage.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from elfctl.adapters.litellm_client import Answer, LLMError, usage_of
from elfctl.services.llm.call import Caller, Policy, _step


def _timeout(model: str, seconds: float, what: str) -> LLMError:
    return LLMError(
        f"{model}: timeout: {what} within {seconds:g}s",
        "the provider may be overloaded; the fallback chain and breaker handle repeated failures",
        kind="timeout",
        transient=True,
    )


async def _open(client: Any, model: str, kwargs: dict) -> tuple[dict, AsyncIterator[dict]]:
    """One attempt: the upstream stream and its first chunk, both within the attempt's timeout."""
    upstream = client.astream(model, kwargs)
    limit = kwargs.get("timeout")
    try:
        async with asyncio.timeout(limit if isinstance(limit, int | float) else None):
            first = await anext(upstream)
    except StopAsyncIteration:
        raise LLMError(f"{model}: the stream ended before its first chunk", kind="server", transient=True) from None
    except TimeoutError:
        await upstream.aclose()
        raise _timeout(model, limit, "no first chunk") from None
    except BaseException:
        await upstream.aclose()
        raise
    return first, upstream


_USAGE, _NULL_USAGE = b'"usage"', b'"usage":null'


def _text_of(chunk: dict) -> list[str]:
    """The generated text of a chunk: content, refusal, reasoning, tool-call names and arguments."""
    text = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        for part in (delta.get("content"), delta.get("refusal"), delta.get("reasoning_content")):
            if isinstance(part, str):
                text.append(part)
        for call in delta.get("tool_calls") or ():
            fn = (call or {}).get("function") or {}
            for part in (fn.get("name"), fn.get("arguments")):
                if isinstance(part, str):
                    text.append(part)
    return text


class Stream:
    """An opened streamed call: `async for chunk in stream` gives the upstream's chunks (bytes or
    dicts, see above), the first one already read. Iterating to the end, an error, or `aclose()`
    settles the call (once)."""

    def __init__(self, caller: Caller, walk, model: str, kwargs: dict, first: dict, upstream):
        self.caller, self.walk, self.model, self.kwargs = caller, walk, model, kwargs
        self.first, self.upstream = first, upstream
        self.text: list[str] = []  # generated text of the parsed chunks (content, tool-call arguments)
        self.raw: list[bytes] = []  # the unparsed chunks, read only if no usage arrives
        self.usage: dict | None = None  # the upstream's own usage, when its usage chunk arrived
        self.settled = False
        asked = kwargs.get("timeout")
        # A stream quiet for longer than a whole non-streamed attempt may take is cut there.
        self.idle_s = caller.settings.timeout_s if not isinstance(asked, int | float) else float(asked)

    def _note(self, chunk: bytes | dict) -> bytes | dict:
        """Note what the ledger needs of a chunk; the chunk as passed on (a usage-bearing one parsed).
        `"usage"` with bare quotes is a key (inside a string its quotes are escaped): no such key, or
        only `"usage":null` (what OpenAI puts on every chunk once include_usage is asked), means no
        usage here."""
        if isinstance(chunk, bytes):
            n = chunk.count(_USAGE)
            if n == 0 or (n == 1 and _NULL_USAGE in chunk):
                self.raw.append(chunk)
                return chunk
            chunk = json.loads(chunk)  # the usage chunk (checked to be a JSON object by the adapter)
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        self.text += _text_of(chunk)
        return chunk

    async def __aiter__(self) -> AsyncIterator[bytes | dict]:
        chunk, self.first = self.first, None
        try:
            while True:
                yield self._note(chunk)
                try:
                    # Only the wait on the upstream is timed, not the consumer's (a slow client).
                    async with asyncio.timeout(self.idle_s):
                        chunk = await anext(self.upstream)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise _timeout(self.model, self.idle_s, "the stream stalled, no chunk") from None
        finally:  # the end, an upstream error, or the consumer gone (GeneratorExit, cancelled)
            await self.aclose()

    async def aclose(self) -> None:
        """Close the upstream (it stops generating) and settle the call with what arrived. Runs to its
        end even if the task is cancelled meanwhile: the store work is on a worker thread."""
        if self.settled:
            return
        self.settled = True
        try:
            await self.upstream.aclose()
        finally:
            if self.usage is not None and self.caller.settings.record == "background":
                # No store work left (the spool and the writer's queue: Caller._finish): no thread hop.
                self._settle()
            else:  # counting tokens (the tokenizer), or recording synchronously
                await asyncio.shield(asyncio.to_thread(self._settle))

    def _settle(self) -> None:
        answer = self._answer()
        _step(self.walk, ("ok", answer))

    def _answer(self) -> Answer:
        client = self.caller.client
        provider_of = getattr(client, "provider_of", None)
        provider = provider_of(self.model) if provider_of else None
        if self.usage is not None:
            return Answer({}, self.model, provider, *usage_of({"usage": self.usage}))
        # No usage from the upstream: what it sent, counted the way the reservation was.
        prompt = client.count_prompt_tokens(self.model, self.kwargs)
        text = [t for raw in self.raw for t in _text_of(json.loads(raw))] + self.text
        completion = client.count_text_tokens(self.model, "".join(text))
        return Answer({}, self.model, provider, prompt, completion, 0, 0, 0)


def start(caller: Caller, policy: Policy, kwargs: dict):
    """A streamed call's start: its store work (keys, the reservation, breakers), so it blocks. For a
    caller already on a worker thread (the gateway's handlers): open_stream(..., started=start(...))
    then needs no thread hand-off before the provider is called. The upstream is always asked for its
    usage chunk; whoever passes the chunks on strips it if their client did not ask."""
    options = {**(kwargs.get("stream_options") or {}), "include_usage": True}
    return caller._prelude(policy, {**kwargs, "stream": True, "stream_options": options}, call=_open)


async def open_stream(caller: Caller, policy: Policy, kwargs: dict, started=None) -> Stream:
    """Walk the team's chain until a model's stream gives its first chunk; raise (LLMError,
    BudgetExceeded, InputError) when none does, before anything was sent. `started`: what start()
    returned for these arguments, else it runs here on a worker thread."""
    if started is None:
        started = await asyncio.to_thread(start, caller, policy, kwargs)
    walk, keyed, attempts, (finished, model) = started
    try:
        while not finished:
            try:
                first, upstream = await attempts[model](keyed[model])
            except Exception as exc:  # noqa: BLE001 - the walk decides: next model or raise
                finished, model = await asyncio.to_thread(_step, walk, ("err", exc))
                continue
            return Stream(caller, walk, model, keyed[model], first, upstream)
    except asyncio.CancelledError:  # the client left mid-attempt: release the reservation now
        await asyncio.shield(asyncio.to_thread(walk.close))
        raise
    raise AssertionError("the walk ended without a stream or an error")  # _drive raises when all fail
