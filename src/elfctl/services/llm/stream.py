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
"""

from __future__ import annotations

import asyncio
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


class Stream:
    """An opened streamed call: `async for chunk in stream` gives the upstream's chunks (dicts), the
    first one already read. Iterating to the end, an error, or `aclose()` settles the call (once)."""

    def __init__(self, caller: Caller, walk, model: str, kwargs: dict, first: dict, upstream):
        self.caller, self.walk, self.model, self.kwargs = caller, walk, model, kwargs
        self.first, self.upstream = first, upstream
        self.text: list[str] = []  # generated text as it arrived (content, tool-call arguments)
        self.usage: dict | None = None  # the upstream's own usage, when its usage chunk arrived
        self.settled = False
        asked = kwargs.get("timeout")
        # A stream quiet for longer than a whole non-streamed attempt may take is cut there.
        self.idle_s = caller.settings.timeout_s if not isinstance(asked, int | float) else float(asked)

    def _note(self, chunk: dict) -> None:
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            for part in (delta.get("content"), delta.get("refusal"), delta.get("reasoning_content")):
                if isinstance(part, str):
                    self.text.append(part)
            for call in delta.get("tool_calls") or ():
                fn = (call or {}).get("function") or {}
                for part in (fn.get("name"), fn.get("arguments")):
                    if isinstance(part, str):
                        self.text.append(part)

    async def __aiter__(self) -> AsyncIterator[dict]:
        chunk, self.first = self.first, None
        try:
            while True:
                self._note(chunk)
                yield chunk
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
        completion = client.count_text_tokens(self.model, "".join(self.text))
        return Answer({}, self.model, provider, prompt, completion, 0, 0, 0)


async def open_stream(caller: Caller, policy: Policy, kwargs: dict) -> Stream:
    """Walk the team's chain until a model's stream gives its first chunk; raise (LLMError,
    BudgetExceeded, InputError) when none does, before anything was sent. The upstream is always
    asked for its usage chunk; whoever passes the chunks on strips it if their client did not ask."""
    options = {**(kwargs.get("stream_options") or {}), "include_usage": True}
    kwargs = {**kwargs, "stream": True, "stream_options": options}
    walk, keyed, attempts, (finished, model) = await caller._aopen(policy, kwargs, call=_open)
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
