"""What team code imports: budgeted, costed, fallback-aware LLM calls.

    from elfctl import llm
    resp = llm.completion(team="marketing-team", messages=[...], max_tokens=200)
    resp._hidden_params["elfctl"]   # {"cost_nanousd", "model" (that answered), "fallback_reason", ...}

The litellm call signature plus `team` (and optional `agent`, `request_id`). The project (and so the
store, team.yaml and price overrides) is found from the current folder like the CLI does. Teams
that call litellm directly can register `llm.callback(team=...)` in `litellm.callbacks` instead.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_runtime: Any = None


class Runtime:
    """Per-process state: config, store, and the call path (prices, spool, breakers, provider keys
    read once), built by the composition root on the first call."""

    def __init__(self, cwd=None, store_url: str | None = None):
        from elfctl import bootstrap
        from elfctl import config as config_mod

        self.config = config_mod.load(cwd=cwd)
        self.store = bootstrap.open_store(self.config, store_url)
        self.caller = bootstrap.llm_caller(self.config, self.store)
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
    """Forget the process's runtime, provider keys read from the store included (tests, or after
    changing folders/config). Records what is queued first."""
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.caller.recorder.close()
            _runtime.store.close()
        _runtime = None


def flush(timeout: float | None = None) -> bool:
    """Wait until the usage rows of the calls made so far are committed to the store. Calls return
    once their row is in the local spool; a background writer commits it (and settles the budget
    reservation) a moment later, and at exit. Call this before reading the ledger right after a
    call, or before `os._exit`. Returns False on timeout."""
    rt = _runtime
    return True if rt is None else rt.caller.recorder.flush(timeout)


def _attributed(team: str | None, agent: str | None) -> tuple[str, str | None]:
    """team/agent as given, else from an enclosing `@elfctl.resilience.cost_tracked`."""
    from elfctl.resilience.attribution import current

    tracked = current()
    team = team or (tracked.team if tracked else None)
    if not team:
        from elfctl.errors import InputError

        raise InputError("elfctl.llm: no team to attribute the call to",
                         hint="pass team=... or call inside @elfctl.resilience.cost_tracked(team=...)")
    return team, agent or (tracked.agent if tracked else None)


def completion(team: str | None = None, agent: str | None = None, **kwargs: Any) -> Any:
    team, agent = _attributed(team, agent)
    rt = runtime()
    return rt.caller.call(rt.policy(team, agent), kwargs)


async def acompletion(team: str | None = None, agent: str | None = None, **kwargs: Any) -> Any:
    import asyncio

    team, agent = _attributed(team, agent)
    rt = await asyncio.to_thread(runtime)  # the first call opens the store and replays the spool
    return await rt.caller.acall(await asyncio.to_thread(rt.policy, team, agent), kwargs)


def callback(team: str | None = None):
    """A litellm CustomLogger recording calls made with litellm directly:
    `litellm.callbacks.append(elfctl.llm.callback(team="marketing-team"))`. The team comes from
    `metadata={"team": ...}` on the call, else this default."""
    from elfctl.services.llm import app as llm_service

    return llm_service.make_callback(lambda: runtime().caller, default_team=team)
