"""litellm: the only module importing it. Calls, token counting, and errors translated to LLMError.

`LITELLM_LOCAL_MODEL_COST_MAP=True` is set before the import, or litellm fetches its price map over
the network at import time. litellm's own retries are switched off (`max_retries=0`): elfctl's retry
policy, breaker and fallback chain decide what happens on failure.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from elfctl.errors import OperationFailed


class LLMError(OperationFailed):
    """A provider call failed. `transient`: worth retrying (timeout, 429, 5xx, connection)."""

    code = "llm_failed"

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        status: int | None = None,
        transient: bool = False,
        retry_after: float | None = None,
        kind: str = "error",
    ):
        super().__init__(message, hint)
        self.status = status
        self.transient = transient
        self.retry_after = retry_after
        self.kind = kind  # timeout | rate_limit | server | connection | bad_request | auth | error
        self.limits: dict[str, str] = {}  # the provider's x-ratelimit-* headers on its error answer (a 429's)


@lru_cache(maxsize=1)
def sdk():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True  # no "Give Feedback" banners on stderr
    litellm.telemetry = False
    return litellm


@dataclass
class Answer:
    response: Any
    model: str
    provider: str | None
    prompt: int
    completion: int
    cached: int
    cache_write: int
    reasoning: int


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def usage_of(response: Any) -> tuple[int, int, int, int, int]:
    """(prompt, completion, cached, cache_write, reasoning) from a litellm response or usage object."""
    u = getattr(response, "usage", None) if not isinstance(response, dict) else response.get("usage")
    if u is None:
        return 0, 0, 0, 0, 0

    def get(o, k):
        return o.get(k) if isinstance(o, dict) else getattr(o, k, None)

    pd, cd = get(u, "prompt_tokens_details"), get(u, "completion_tokens_details")
    cached = _int(get(pd, "cached_tokens")) if pd is not None else 0
    cached = cached or _int(get(u, "cache_read_input_tokens"))
    write = _int(get(u, "cache_creation_input_tokens"))
    reasoning = _int(get(cd, "reasoning_tokens")) if cd is not None else 0
    return _int(get(u, "prompt_tokens")), _int(get(u, "completion_tokens")), cached, write, reasoning


def _answer(model: str, response: Any) -> Answer:
    hidden = getattr(response, "_hidden_params", None) or {}
    return Answer(
        response, model, hidden.get("custom_llm_provider") or provider_of(model), *usage_of(response)
    )


def provider_of(model: str) -> str | None:
    return model.split("/", 1)[0] if "/" in model else None


def translate(exc: BaseException, model: str) -> LLMError:
    litellm = sdk()
    status = getattr(exc, "status_code", None)
    retry_after = None
    headers = getattr(exc, "litellm_response_headers", None)
    resp = getattr(exc, "response", None)
    if headers is None and resp is not None:
        headers = getattr(resp, "headers", None)
    if headers is not None:
        try:
            raw = headers.get("retry-after")
            retry_after = float(raw) if raw is not None else None
        except (TypeError, ValueError):
            retry_after = None
    name = type(exc).__name__
    if isinstance(exc, litellm.Timeout):
        kind, transient = "timeout", True
    elif isinstance(exc, litellm.RateLimitError):
        kind, transient = "rate_limit", True
    elif isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)):
        kind, transient = "auth", False
    elif isinstance(exc, (litellm.BadRequestError, litellm.NotFoundError)):
        kind, transient = "bad_request", False
    elif isinstance(exc, litellm.APIConnectionError):
        kind, transient = "connection", True
    elif isinstance(status, int) and status >= 500:
        kind, transient = "server", True
    else:
        kind, transient = "error", isinstance(status, int) and status in (408, 409)
    msg = str(getattr(exc, "message", None) or exc).splitlines()[0][:300]
    hint = {
        "auth": "check the provider key (environment or credential store)",
        "bad_request": "the request itself is wrong: check the model name and arguments",
        "rate_limit": "the provider is rate limiting: lower the call rate or raise the quota",
    }.get(kind, "the provider may be down; the fallback chain and breaker handle repeated failures")
    err = LLMError(
        f"{model}: {kind} ({status or name}): {msg}",
        hint,
        status=status,
        transient=transient,
        retry_after=retry_after,
        kind=kind,
    )
    if headers is not None:
        from elfctl.domain.ratelimit import headers_of

        err.limits = headers_of(headers)
    return err


def complete(model: str, kwargs: dict[str, Any]) -> Answer:
    litellm = sdk()
    try:
        return _answer(model, litellm.completion(model=model, **kwargs))
    except LLMError:
        raise
    except Exception as exc:  # noqa: BLE001 - every SDK error becomes an LLMError here
        raise translate(exc, model) from None


async def acomplete(model: str, kwargs: dict[str, Any]) -> Answer:
    litellm = sdk()
    try:
        return _answer(model, await litellm.acompletion(model=model, **kwargs))
    except LLMError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise translate(exc, model) from None


def astream(model: str, kwargs: dict[str, Any]) -> AsyncIterator[dict]:
    """A streamed call (`stream=True` in kwargs): litellm's chunks as OpenAI-shaped dicts. litellm is
    imported here, at once, so a caller timing the first chunk times the provider."""
    return _astream(sdk(), model, kwargs)


async def _astream(litellm: Any, model: str, kwargs: dict[str, Any]) -> AsyncIterator[dict]:
    try:
        response = await litellm.acompletion(model=model, **kwargs)
        async for chunk in response:
            yield chunk.model_dump(exclude_none=True)
    except LLMError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise translate(exc, model) from None


def count_prompt_tokens(model: str, kwargs: dict[str, Any]) -> int:
    """Prompt tokens of a request, counted the way litellm does (tiktoken or the model's tokenizer)."""
    litellm = sdk()
    try:
        return int(
            litellm.token_counter(
                model=model, messages=kwargs.get("messages") or [], tools=kwargs.get("tools")
            )
        )
    except Exception:  # noqa: BLE001 - an unknown tokenizer: estimate ~4 characters a token
        text = str(kwargs.get("messages") or "")
        return len(text) // 4 + 8


def count_text_tokens(model: str, text: str) -> int:
    """Tokens of generated text (a stream cut short has no usage of its own), counted as litellm
    counts a response: the text alone, no message framing."""
    if not text:
        return 0
    litellm = sdk()
    try:
        return int(litellm.token_counter(model=model, text=text, count_response_tokens=True))
    except Exception:  # noqa: BLE001 - an unknown tokenizer: ~4 characters a token
        return (len(text) + 3) // 4


def callback_class():
    """litellm's CustomLogger subclass base (imported here so elfctl.llm never imports litellm)."""
    from litellm.integrations.custom_logger import CustomLogger

    return CustomLogger


def register_callback(handler: Any) -> None:
    litellm = sdk()
    if handler not in litellm.callbacks:
        litellm.callbacks.append(handler)
