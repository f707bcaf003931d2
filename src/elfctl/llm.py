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
_stored_keys: dict[tuple[str, str, str], Any] = {}  # (project root, variable, team) -> Secret | None


def _provider_key(name: str, team: str | None = None, source: Any = None) -> str | None:
    """The API key of a provider (`openai`, `anthropic`, ...), the one place that reads them.
    Order: the environment variable (what litellm itself reads); else the credential store, the
    team's own key first, then the global one. The store is read once per process per (project,
    variable, team) and remembered, negative answers too (`reset()` forgets them): no key
    derivation, lock or audit entry per call. `source` has `.config` and `.store` (default: the
    process's runtime)."""
    from elfctl.domain.llm_providers import key_var

    var = key_var(name)
    value = os.environ.get(var)
    if value:
        from elfctl.redact import register_secret

        register_secret(value)
        return value
    src = source if source is not None else runtime()
    cache_key = (str(src.config.root), var, team or "")
    if cache_key not in _stored_keys:
        from elfctl.services.llm import app as llm_service

        _stored_keys[cache_key] = llm_service.stored_key(src.config, src.store, var, team)
    stored = _stored_keys[cache_key]
    return stored.reveal() if stored is not None else None


def key_lookup(source: Any):
    """`key_for(provider, team)` for the Caller: `_provider_key` bound to a config and store."""
    return lambda provider, team: _provider_key(provider, team, source)


class Runtime:
    """Per-process state: config, store, prices, spool, breakers (built on the first call)."""

    def __init__(self, cwd=None, store_url: str | None = None):
        from elfctl import config as config_mod
        from elfctl.adapters import litellm_client
        from elfctl.bootstrap import open_store
        from elfctl.services.llm import app as llm_service

        self.config = config_mod.load(cwd=cwd)
        self.store = open_store(self.config, store_url)
        self.caller = llm_service.build_caller(
            self.config, self.store, litellm_client, key_for=key_lookup(self)
        )
        self.caller.spool.replay(self.store)  # calls a killed process answered but never recorded
        self._policies: dict[str, Any] = {}

    def policy(self, team: str, agent: str | None):
        from elfctl.services.llm import app as llm_service

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
    """Forget the process's runtime (tests, or after changing folders/config). Records what is queued
    first."""
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.caller.recorder.close()
            _runtime.store.close()
        _runtime = None
        _stored_keys.clear()


def flush(timeout: float | None = None) -> bool:
    """Wait until the usage rows of the calls made so far are committed to the store. Calls return
    once their row is in the local spool; a background writer commits it (and settles the budget
    reservation) a moment later, and at exit. Call this before reading the ledger right after a
    call, or before `os._exit`. Returns False on timeout."""
    rt = _runtime
    return True if rt is None else rt.caller.recorder.flush(timeout)


def completion(team: str, agent: str | None = None, **kwargs: Any) -> Any:
    rt = runtime()
    return rt.caller.call(rt.policy(team, agent), kwargs)


async def acompletion(team: str, agent: str | None = None, **kwargs: Any) -> Any:
    import asyncio

    rt = await asyncio.to_thread(runtime)  # the first call opens the store and replays the spool
    return await rt.caller.acall(await asyncio.to_thread(rt.policy, team, agent), kwargs)


def callback(team: str | None = None):
    """A litellm CustomLogger recording calls made with litellm directly:
    `litellm.callbacks.append(elfctl.llm.callback(team="marketing-team"))`. The team comes from
    `metadata={"team": ...}` on the call, else this default."""
    from elfctl.services.llm import app as llm_service

    return llm_service.make_callback(lambda: runtime().caller, default_team=team)
