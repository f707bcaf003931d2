"""What team code imports: budgeted, costed, fallback-aware LLM calls.

    from elfctl import llm
    resp = llm.completion(team="marketing-team", messages=[...], max_tokens=200)
    resp._hidden_params["elfctl"]   # {"cost_nanousd", "model" (that answered), "fallback_reason", ...}

The litellm call signature plus `team` (and optional `agent`, `request_id`). The project (and so the
store, team.yaml and price overrides) is found from the current folder like the CLI does. Teams
that call litellm directly can register `llm.callback(team=...)` in `litellm.callbacks` instead.
"""

from __future__ import annotations

import os
import threading
from typing import Any

_lock = threading.Lock()
_runtime: Any = None


def _provider_key(name: str) -> str | None:
    """The API key of a provider (`openai`, `anthropic`, ...). Today: the environment. The one place
    to point at the credential store later."""
    from elfctl.domain.llm_providers import key_var

    var = key_var(name)
    value = os.environ.get(var)
    if value:
        from elfctl.redact import register_secret

        register_secret(value)
    return value


class Runtime:
    """Per-process state: config, store, prices, spool, breakers (built on the first call)."""

    def __init__(self, cwd=None, store_url: str | None = None):
        from elfctl import config as config_mod
        from elfctl.adapters import litellm_client
        from elfctl.bootstrap import open_store
        from elfctl.services import llm_service

        self.config = config_mod.load(cwd=cwd)
        self.store = open_store(self.config, store_url)
        self.caller = llm_service.build_caller(self.config, self.store, litellm_client)
        self.caller.spool.replay(self.store)  # calls a killed process answered but never recorded
        self._policies: dict[str, Any] = {}

    def policy(self, team: str, agent: str | None):
        from elfctl.services import llm_service

        if team not in self._policies:
            self._policies[team] = llm_service.team_policy(self.config, self.store, team)
        p = self._policies[team]
        return type(p)(p.team, p.chain, p.budget, agent)


def runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime()
        return _runtime


def reset() -> None:
    """Forget the process's runtime (tests, or after changing folders/config)."""
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.store.close()
        _runtime = None


def _with_key(kwargs: dict) -> dict:
    model = kwargs.get("model") or ""
    if "api_key" not in kwargs and "/" in model:
        key = _provider_key(model.split("/", 1)[0])
        if key:
            kwargs = {**kwargs, "api_key": key}
    return kwargs


def completion(team: str, agent: str | None = None, **kwargs: Any) -> Any:
    rt = runtime()
    return rt.caller.call(rt.policy(team, agent), _with_key(kwargs))


async def acompletion(team: str, agent: str | None = None, **kwargs: Any) -> Any:
    rt = runtime()
    return await rt.caller.acall(rt.policy(team, agent), _with_key(kwargs))


def callback(team: str | None = None):
    """A litellm CustomLogger recording calls made with litellm directly:
    `litellm.callbacks.append(elfctl.llm.callback(team="marketing-team"))`. The team comes from
    `metadata={"team": ...}` on the call, else this default."""
    from elfctl.services import llm_service

    return llm_service.make_callback(lambda: runtime().caller, default_team=team)
