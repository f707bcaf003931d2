"""The OpenAI-compatible API: POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models.

Every call runs the LLM Caller (`services/llm/call.py`), the code behind `elfctl.llm.completion`:
budget reserve/settle, the team's fallback chain, store-shared breakers, retries, spool, background
writer. The team is the key's, the agent the `X-Elfctl-Agent` header's, the revision the key's.

A team may call the models of its chain (`llm.model` and `llm.fallbacks` of its team.yaml): another
model the price map knows is 403, a name nobody knows 404. A request is checked before anything is
reserved: unknown arguments and wrong types are 400 with the argument named (as OpenAI answers).
"""

from __future__ import annotations

from typing import Any

from elfctl.errors import ErrorCode, InputError
from elfctl.ids import new_id
from elfctl.services.gateway import quota
from elfctl.services.gateway.errors import ApiError
from elfctl.services.gateway.routes import Request, route
from elfctl.services.llm.call import Policy

# Arguments passed on to the provider. Anything else is refused: litellm treats some names
# (api_base, api_key, mock_response ...) as its own, and a client must never steer those.
CHAT_ARGS = frozenset({
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature",
    "top_p", "n", "stop", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
    "user", "tools", "tool_choice", "parallel_tool_calls", "response_format", "seed", "reasoning_effort",
    "modalities", "audio", "prediction", "service_tier", "functions", "function_call", "store",
    "web_search_options", "verbosity",
})
EMBED_ARGS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
_NUMBERS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_COUNTS = ("max_tokens", "max_completion_tokens", "n")
_AGENT_MAX = 128


def _bad(message: str, param: str | None, code: ErrorCode = "invalid_value") -> ApiError:
    return ApiError(400, message, code=code, param=param)


def _object(req: Request) -> dict[str, Any]:
    data = req.json()
    if not isinstance(data, dict):
        raise _bad(f"the request body must be a JSON object, got {type(data).__name__}", None, code="invalid_type")
    return data


def _check_args(data: dict, allowed: frozenset) -> None:
    for name in data:
        if name not in allowed:
            raise _bad(f"Unrecognized request argument supplied: {name}", name, code="unknown_parameter")
    model = data.get("model")
    if model is None:
        raise _bad("you must provide a model parameter", "model", code="missing_required_parameter")
    if not isinstance(model, str) or not model.strip() or len(model) > 256:
        raise _bad(f"model must be a model name (a string), got {type(model).__name__}", "model", code="invalid_type")
    for name in _NUMBERS:
        v = data.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise _bad(f"{name} must be a number, got {type(v).__name__}", name, code="invalid_type")
    for name in _COUNTS:
        v = data.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise _bad(f"{name} must be a whole number of at least 1, got {v!r}", name, code="invalid_type")
    if "stream" in data and not isinstance(data["stream"], bool | None):
        raise _bad(f"stream must be true or false, got {type(data['stream']).__name__}", "stream", code="invalid_type")


def _check_messages(data: dict) -> None:
    msgs = data.get("messages")
    if msgs is None:
        raise _bad("you must provide a messages parameter", "messages", code="missing_required_parameter")
    if not isinstance(msgs, list) or not msgs:
        raise _bad("messages must be a non-empty array of message objects", "messages", code="invalid_type")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise _bad(f"messages[{i}] must be an object with a string role", f"messages[{i}]", code="invalid_type")


def _check_input(data: dict) -> None:
    value = data.get("input")
    if value is None:
        raise _bad("you must provide an input parameter", "input", code="missing_required_parameter")
    ok = isinstance(value, str) and value != "" or isinstance(value, list) and value and (
        all(isinstance(v, str) for v in value)
        or all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or all(isinstance(v, list) and v and all(isinstance(t, int) and not isinstance(t, bool) for t in v)
               for v in value))
    if not ok:
        raise _bad("input must be a non-empty string, array of strings, or array of token arrays", "input",
                   code="invalid_type")


def _agent(req: Request) -> str | None:
    agent = req.headers.get("x-elfctl-agent")
    if agent is None:
        return None
    agent = agent.strip()
    if not agent or len(agent) > _AGENT_MAX or not agent.isprintable():
        raise _bad(f"X-Elfctl-Agent must be 1 to {_AGENT_MAX} printable characters", "X-Elfctl-Agent")
    return agent


def _known(req: Request, model: str) -> bool:
    entries = req.gateway.caller.prices.entries()
    return model in entries or model.split("/", 1)[-1] in entries


def _policy(req: Request) -> Policy:
    team = req.key.team
    try:
        return req.gateway.policy(team)
    except InputError as exc:  # team.yaml the gateway cannot read: the operator's to fix, not the client's
        raise ApiError(500, f"the gateway cannot read team {team}'s LLM policy: {exc.message}",
                       type="api_error", code="team_config") from None


def resolve(req: Request, model: str) -> tuple[Policy, str]:
    """(the team's Policy for this request, the chain's name of `model`), or 403/404."""
    policy = _policy(req)
    for m in policy.chain:
        if model == m or model == m.split("/", 1)[-1]:
            chain = policy.chain
            served = quota.serving(req.gateway.config, req.gateway.store, policy, m)
            if served != m:  # api_quota critical (budget, or the provider's rate limit): a later model serves
                chain, m = chain[chain.index(served):], served
            return Policy(policy.team, chain, policy.budget, _agent(req), req.key.revision), m
    if not _known(req, model):
        raise ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                       code="model_not_found", param="model")
    if not policy.chain:
        raise ApiError(403, f"model {model} is not allowed: this key's team has no LLM policy",
                       code="model_not_allowed", param="model")
    raise ApiError(403, f"model {model} is not allowed for this key's team (allowed: {', '.join(policy.chain)})",
                   code="model_not_allowed", param="model")


def _answer(response: Any) -> tuple[int, dict[str, str], bytes]:
    """The provider's answer as the client gets it, with the ledger's request id and the cost."""
    info = getattr(response, "elfctl", None) or (getattr(response, "_hidden_params", None) or {}).get("elfctl", {})
    headers = {"x-request-id": info.get("request_id", ""), "x-elfctl-model": info.get("model", ""),
               "x-elfctl-cost-usd": info.get("cost_usd", "")}
    body = getattr(response, "body", None)
    if isinstance(body, bytes):  # forwarded as the provider sent it
        return 200, {**headers, **response.headers}, body
    return 200, headers, response.model_dump_json().encode()  # translated by litellm


def _complete(req: Request, policy: Policy, kwargs: dict):
    """The call's store work here, on the handler's worker thread; the provider's exchange, on the event
    loop (gateway/unary.py): what the server awaits for the answer."""
    from elfctl.services.gateway import unary

    started = unary.start(req.gateway.caller, policy, kwargs)  # an exhausted budget raises here: a 429
    return _answered(req, started)


async def _answered(req: Request, started) -> tuple[int, dict[str, str], bytes]:
    from elfctl.services.gateway import unary

    # the provider's rate-limit headers are kept by the client itself (gateway/quota.py Watched)
    return _answer(await unary.finish(req.gateway.caller, started))


def _stream(req: Request, policy: Policy, kwargs: dict):
    """`stream: true`: server-sent events (gateway/sse.py), on the same call path."""
    from elfctl.services.gateway import sse

    return sse.respond(req.gateway, policy, kwargs)


@route("POST", "/v1/chat/completions")
def chat_completions(req: Request):
    data = _object(req)
    _check_args(data, CHAT_ARGS)
    _check_messages(data)
    policy, model = resolve(req, data["model"])
    kwargs = {**data, "model": model, "request_id": new_id()}
    if kwargs.pop("stream", None):
        return _stream(req, policy, kwargs)
    kwargs.pop("stream_options", None)
    return _complete(req, policy, kwargs)


@route("POST", "/v1/embeddings")
def embeddings(req: Request):
    data = _object(req)
    _check_args(data, EMBED_ARGS)
    _check_input(data)
    policy, model = resolve(req, data["model"])
    return _complete(req, policy, {**data, "model": model, "request_id": new_id(), "endpoint": "embeddings"})


def _model(m: str) -> dict:
    return {"id": m, "object": "model", "created": 0, "owned_by": m.split("/", 1)[0] if "/" in m else "openai"}


@route("GET", "/v1/models")
def models(req: Request):
    return 200, {}, {"object": "list", "data": [_model(m) for m in _policy(req).chain]}


@route("GET", "/v1/models/{model}")
def model(req: Request):
    name = req.params["model"]
    for m in _policy(req).chain:
        if name == m or name == m.split("/", 1)[-1]:
            return 200, {}, _model(m)
    raise ApiError(404, f"The model `{name}` does not exist or you do not have access to it.",
                   code="model_not_found", param="model")
