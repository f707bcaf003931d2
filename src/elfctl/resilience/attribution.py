"""`@cost_tracked(team=..., agent=...)`: LLM calls made inside are attributed to that team and agent.

The attribution is a contextvar, so it follows the code that runs inside the decorated function
(threads started there excepted, asyncio tasks included):
- `elfctl.llm.completion()` / `acompletion()` without `team=` take it;
- the litellm callback (`elfctl.llm.callback()`) takes it for calls without `metadata={"team": ...}`
  (litellm runs its success callbacks in a copy of the caller's context);
- the official `openai` SDK pointed at the gateway sends it as headers, added per request by an httpx
  event hook you pass explicitly (no patching of the SDK):

      client = openai.OpenAI(http_client=httpx.Client(event_hooks={"request": [tag_request]}))
      aclient = openai.AsyncOpenAI(http_client=httpx.AsyncClient(event_hooks={"request": [atag_request]}))

  The gateway knows the team from its key; `X-Elfctl-Agent` names the agent (`X-Elfctl-Team` is sent
  too, for a gateway key shared by several teams).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

AGENT_HEADER = "X-Elfctl-Agent"
TEAM_HEADER = "X-Elfctl-Team"


@dataclass(frozen=True)
class Attribution:
    team: str | None
    agent: str | None


_current: contextvars.ContextVar[Attribution | None] = contextvars.ContextVar("elfctl_attribution", default=None)


def current() -> Attribution | None:
    """The team and agent LLM calls made here are attributed to (None outside @cost_tracked)."""
    return _current.get()


def headers() -> dict[str, str]:
    """The attribution headers for a request made now ({} outside @cost_tracked)."""
    a = _current.get()
    if a is None:
        return {}
    out = {}
    if a.team:
        out[TEAM_HEADER] = a.team
    if a.agent:
        out[AGENT_HEADER] = a.agent
    return out


def tag_request(request: Any) -> None:
    """httpx request event hook (sync client): add the attribution headers."""
    for k, v in headers().items():
        request.headers[k] = v


async def atag_request(request: Any) -> None:
    """httpx request event hook (async client)."""
    tag_request(request)


AGENT_MAX = 128  # what the gateway accepts in X-Elfctl-Agent


def _checked(value: str | None, what: str) -> str | None:
    """Printable ASCII (it travels as an HTTP header), 1..AGENT_MAX characters, no edge spaces."""
    if value is None:
        return None
    if (not isinstance(value, str) or not value or len(value) > AGENT_MAX or not value.isprintable()
            or not value.isascii() or value != value.strip()):
        raise ValueError(f"cost_tracked: {what} must be 1..{AGENT_MAX} printable ASCII characters, got {value!r}")
    return value


def cost_tracked(team: str | None = None, agent: str | None = None) -> Callable[[Callable], Callable]:
    """Attribute the LLM calls made inside the decorated function (sync or async) to team/agent. An
    inner @cost_tracked wins; a field it leaves None is taken from the outer one."""
    from elfctl.domain.names import check_team_name

    if team is not None:
        check_team_name(team)
    _checked(agent, "agent")

    def decorate(fn: Callable) -> Callable:
        def enter():
            outer = _current.get()
            return _current.set(Attribution(team or (outer.team if outer else None),
                                            agent or (outer.agent if outer else None)))

        if inspect.iscoroutinefunction(fn):

            async def arun(*args: Any, **kwargs: Any) -> Any:
                token = enter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    _current.reset(token)

            return functools.wraps(fn)(arun)

        def run(*args: Any, **kwargs: Any) -> Any:
            token = enter()
            try:
                return fn(*args, **kwargs)
            finally:
                _current.reset(token)

        return functools.wraps(fn)(run)

    return decorate
