"""LLM calls as OpenTelemetry GenAI spans and metrics (semantic conventions for generative AI).

One CLIENT span per call, `{gen_ai.operation.name} {gen_ai.request.model}`, spanning the whole walk of
the team's chain (budget reservation included); under it one CLIENT span per attempt (each retry, each
fallback model), each with its own model and, when it failed, `error.type`. elfctl's own attributes
carry what no convention names: team, agent, revision, the call's cost (the ledger row's, to the
nano-dollar), why it fell back, whether a cache answered. Message content only with
`telemetry.capture_content`.

Metrics, once per call: `gen_ai.client.token.usage` ({token}, by gen_ai.token.type),
`gen_ai.client.operation.duration` (s), and `elfctl.cost` (USD, by elfctl.team and elfctl.model, the
ledger's model column so it reconciles with `elfctl cost report`).
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from typing import Any

from elfctl.redact import scrub
from elfctl.services.telemetry.hooks import Off

TOKEN_BUCKETS = [4**i for i in range(14)]  # 1, 4, 16, ... 67108864
DURATION_BUCKETS = [0.01 * 2**i for i in range(14)]  # 0.01, 0.02, 0.04, ... 81.92
_CANCELLED = (GeneratorExit, KeyboardInterrupt)
log = logging.getLogger("elfctl.telemetry")


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def error_type(exc: BaseException) -> str:
    """Low-cardinality, as error.type wants: the provider failure's kind, else elfctl's error code."""
    if isinstance(exc, _CANCELLED) or type(exc).__name__ == "CancelledError":
        return "cancelled"
    return getattr(exc, "kind", None) or getattr(exc, "code", None) or type(exc).__qualname__


def _provider(model: str) -> str | None:
    return model.split("/", 1)[0] if "/" in model else None


def _safely(fn, *args) -> None:
    """Telemetry never fails a call: a recording that breaks is logged, the call goes on."""
    try:
        fn(*args)
    except Exception:  # noqa: BLE001
        log.debug("telemetry: recording failed", exc_info=True)


class _Call:
    __slots__ = ("span", "op", "requested", "t0", "tries", "row")

    def __init__(self, span, op: str, requested: str):
        self.span, self.op, self.requested = span, op, requested
        self.t0, self.tries, self.row = time.perf_counter(), 0, None


class Telemetry(Off):
    """The hooks of services/telemetry/hooks.py, recording into an adapters.otel.Pipeline."""

    enabled = True

    def __init__(self, pipeline, capture_content: bool = False):
        self.pipeline, self.capture = pipeline, capture_content
        self._calls: dict[str, _Call] = {}  # request id -> the call's span, for its attempts
        self.tokens = pipeline.histogram("gen_ai.client.token.usage", "{token}",
                                         "Number of input and output tokens used.", TOKEN_BUCKETS)
        self.duration = pipeline.histogram("gen_ai.client.operation.duration", "s",
                                           "GenAI operation duration.", DURATION_BUCKETS)
        self.cost = pipeline.counter("elfctl.cost", "USD", "Cost of LLM calls, as recorded in the ledger.")

    # -- the call -------------------------------------------------------------------------------
    def walk(self, driver, policy, request_id: str, chain: list[str], kwargs: dict):
        return self._walk(driver, policy, request_id, chain, kwargs)

    def _walk(self, driver, policy, request_id, chain, kwargs):
        op = "embeddings" if "input" in kwargs and "messages" not in kwargs else "chat"
        requested = chain[0] if chain else str(kwargs.get("model") or "")
        attrs = {
            "gen_ai.operation.name": op,
            "gen_ai.request.model": requested,
            "gen_ai.provider.name": _provider(requested),
            "gen_ai.request.max_tokens": kwargs.get("max_tokens") or kwargs.get("max_completion_tokens"),
            "gen_ai.request.temperature": kwargs.get("temperature"),
            "gen_ai.request.top_p": kwargs.get("top_p"),
            "elfctl.team": policy.team,
            "elfctl.agent": policy.agent,
            "elfctl.revision": getattr(policy, "revision", None),
            "elfctl.request_id": request_id,
        }
        if self.capture and kwargs.get("messages") is not None:
            attrs["gen_ai.input.messages"] = scrub(json.dumps(kwargs["messages"], default=str))
        call = _Call(self.pipeline.start(f"{op} {requested}", attrs), op, requested)
        self._calls[request_id] = call
        try:
            response = yield from driver  # send, and close when the caller gives up, pass through
        except BaseException as exc:
            _safely(self._failed, call, exc)
            raise
        else:
            _safely(self._succeeded, call, policy, response)
            return response
        finally:
            self._calls.pop(request_id, None)
            call.span.end()

    def finished(self, row) -> None:
        """The call's usage row (Caller._finish): its cost and model are the ledger's."""
        call = self._calls.get(row.request_id)
        if call is not None:
            call.row = row

    def _metric_attrs(self, call: _Call, provider, response_model) -> dict:
        return {k: v for k, v in (("gen_ai.operation.name", call.op), ("gen_ai.provider.name", provider),
                                  ("gen_ai.request.model", call.requested),
                                  ("gen_ai.response.model", response_model)) if v is not None}

    def _succeeded(self, call: _Call, policy, response) -> None:
        row = call.row
        choices = _get(response, "choices") or []
        reasons = [str(r) for r in (_get(c, "finish_reason") for c in choices) if r]
        provider = (row.provider if row else None) or _provider(row.model if row else call.requested)
        model = _get(response, "model") or (row.model if row else None)
        attrs = {
            "gen_ai.provider.name": provider,
            "gen_ai.response.model": model,
            "gen_ai.response.id": _get(response, "id"),
            "gen_ai.response.finish_reasons": reasons or None,
        }
        if row is not None:
            attrs.update({
                "gen_ai.usage.input_tokens": row.prompt_tokens,
                "gen_ai.usage.output_tokens": row.completion_tokens,
                "elfctl.model": row.model,
                "elfctl.cost.usd": row.cost_nanousd / 1e9,
                "elfctl.fallback.reason": row.fallback_reason,
            })
        attrs["elfctl.cache.hit"] = bool((_get(response, "_hidden_params") or {}).get("cache_hit"))
        if self.capture and choices:
            out = [_get(c, "message") for c in choices]
            attrs["gen_ai.output.messages"] = scrub(json.dumps(
                [m if isinstance(m, dict) else {"role": _get(m, "role"), "content": _get(m, "content")} for m in out],
                default=str))
        call.span.set(attrs)
        m = self._metric_attrs(call, provider, model)
        self.duration.record(time.perf_counter() - call.t0, m, on=call.span)
        if row is not None:
            self.tokens.record(row.prompt_tokens, {**m, "gen_ai.token.type": "input"}, on=call.span)
            self.tokens.record(row.completion_tokens, {**m, "gen_ai.token.type": "output"}, on=call.span)
            if row.cost_nanousd:
                self.cost.add(row.cost_nanousd / 1e9, {"elfctl.team": row.team, "elfctl.model": row.model},
                              on=call.span)

    def _failed(self, call: _Call, exc: BaseException) -> None:
        kind = error_type(exc)
        call.span.fail(kind, scrub(str(getattr(exc, "message", None) or exc))[:1000])
        m = self._metric_attrs(call, _provider(call.requested), None)
        self.duration.record(time.perf_counter() - call.t0, {**m, "error.type": kind}, on=call.span)

    # -- one attempt ------------------------------------------------------------------------------
    def attempt(self, model: str, fn):
        if inspect.iscoroutinefunction(fn):

            async def arun(kwargs, *args, **kw):
                span, call = self._attempt_start(model, kwargs)
                try:
                    answer = await fn(kwargs, *args, **kw)
                except BaseException as exc:
                    self._attempt_end(span, call, None, exc)
                    raise
                self._attempt_end(span, call, answer, None)
                return answer

            return arun

        def run(kwargs, *args, **kw):
            span, call = self._attempt_start(model, kwargs)
            try:
                answer = fn(kwargs, *args, **kw)
            except BaseException as exc:
                self._attempt_end(span, call, None, exc)
                raise
            self._attempt_end(span, call, answer, None)
            return answer

        return run

    def _attempt_start(self, model: str, kwargs: dict):
        try:
            return self._attempt_span(model, kwargs)
        except Exception:  # noqa: BLE001 - see _safely
            return None, None

    def _attempt_span(self, model: str, kwargs: dict):
        call = self._calls.get((kwargs.get("metadata") or {}).get("elfctl_request_id", ""))
        if call is None:
            return None, None
        call.tries += 1
        span = self.pipeline.start(f"{call.op} {model}", {
            "gen_ai.operation.name": call.op,
            "gen_ai.request.model": model,
            "gen_ai.provider.name": _provider(model),
            "elfctl.attempt": call.tries,
        }, parent=call.span)
        return span, call

    def _attempt_end(self, span, call: _Call | None, answer, exc: BaseException | None) -> None:
        if span is not None:
            _safely(self._end_attempt, span, answer, exc)

    def _end_attempt(self, span, answer, exc: BaseException | None) -> None:
        if exc is not None:
            span.fail(error_type(exc), scrub(str(getattr(exc, "message", None) or exc))[:1000])
        else:  # an Answer (adapters' call), or what a stream's opening returns
            response = getattr(answer, "response", None)
            span.set({
                "gen_ai.provider.name": getattr(answer, "provider", None),
                "gen_ai.response.model": _get(response, "model"),
                "gen_ai.response.id": _get(response, "id"),
                "gen_ai.usage.input_tokens": getattr(answer, "prompt", None),
                "gen_ai.usage.output_tokens": getattr(answer, "completion", None),
            })
        span.end()

    # -- deploys ------------------------------------------------------------------------------------
    def deploy(self, team: str, revision: int, target: str, image: str):
        from elfctl.services.telemetry.deploys import DeploySpan

        return DeploySpan(self.pipeline, team, revision, target, image)
