"""Wiring for LLM calls: settings from config, a team's policy, the litellm callback, `llm test`."""

from __future__ import annotations

import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

from elfctl.adapters import team_files as team_mod
from elfctl.domain.clock import iso, now
from elfctl.domain.names import check_team_name
from elfctl.domain.pricing import Tokens
from elfctl.domain.usage import UsageRow, prompt_hash
from elfctl.ports import Store
from elfctl.resilience import attribution
from elfctl.services.cost import budgets, ledger
from elfctl.services.llm.call import Caller, Policy, Settings
from elfctl.services.llm.spool import Spool


def settings(cfg) -> Settings:
    g = cfg.get
    return Settings(
        timeout_s=g("llm.timeout_s"),
        retry_max_time_s=g("llm.retry_max_time_s"),
        retry_max_tries=g("llm.retry_max_tries"),
        breaker_fail_max=g("llm.breaker_fail_max"),
        breaker_reset_s=g("llm.breaker_reset_s"),
        output_cap_tokens=g("llm.output_cap_tokens"),
        reservation_ttl_s=g("llm.reservation_ttl_s"),
        record=_record_mode(g("llm.record")),
    )


def _record_mode(value: str) -> str:
    if value not in ("background", "sync"):
        from elfctl.errors import InputError

        raise InputError(
            f"llm.record {value!r} is not a recording mode", hint="set llm.record to background or sync"
        )
    return value


def prices_path(cfg) -> Path:
    return cfg.path("llm.prices_file")


def spool(cfg) -> Spool:
    return Spool(cfg.elf_dir / "spool")


def teams_dir(cfg) -> Path:
    return cfg.path("teams.dir")


def team_policy(cfg, store: Store, team: str) -> Policy:
    """The team's chain from team.yaml (if any) and its budget (store row wins over team.yaml)."""
    path = teams_dir(cfg) / team / "team.yaml"
    spec = team_mod.load(path) if path.is_file() else None
    if spec is None:
        check_team_name(team)
    chain = [m for m in ([spec.llm.model] + list(spec.llm.fallbacks) if spec else []) if m]
    return Policy(team, chain, budgets.get(store, team, spec.llm.budget if spec else None))


def make_callback(get_caller, default_team: str | None = None):
    """`get_caller()` is asked at each event, so the callback follows the process's current runtime
    (litellm keeps callbacks in internal lists that outlive `litellm.callbacks`)."""
    cls = _callback_class()
    return cls(get_caller, default_team)


@lru_cache(maxsize=1)
def _callback_class():
    from elfctl.adapters import litellm_client

    base = litellm_client.callback_class()

    class ElfctlCallback(base):  # type: ignore[misc,valid-type]
        """Records every successful litellm call not already made through elfctl.llm."""

        def __init__(self, get_caller, default_team):
            super().__init__()
            self.get_caller = get_caller
            self.default_team = default_team

        def _record(self, kwargs, response, start, end):
            caller = self.get_caller()
            default_team = self.default_team
            params = kwargs.get("litellm_params") or {}
            meta = params.get("metadata") or kwargs.get("metadata") or {}
            if meta.get("elfctl_request_id"):
                return  # elfctl.llm records its own calls
            tracked = attribution.current()  # an enclosing @cost_tracked (litellm copies the context)
            team = meta.get("team") or (tracked and tracked.team) or default_team
            if not team:
                return
            model = kwargs.get("model") or getattr(response, "model", "") or "unknown"
            provider = kwargs.get("custom_llm_provider") or params.get("custom_llm_provider")
            name = f"{provider}/{model}" if provider and "/" not in model else model
            p, c, cached, write, reasoning = litellm_client.usage_of(response)
            cost = caller.prices.cost(name, Tokens(p, c, cached, write, reasoning))
            latency = int((end - start).total_seconds() * 1000) if start and end else None
            row = UsageRow(
                request_id=str(kwargs.get("litellm_call_id") or uuid.uuid4().hex),
                ts=iso(now()),
                team=team,
                agent=meta.get("agent") or (tracked and tracked.agent) or None,
                requested_model=name,
                model=name,
                provider=provider,
                prompt_tokens=p,
                completion_tokens=c,
                cached_tokens=cached,
                cache_write_tokens=write,
                reasoning_tokens=reasoning,
                cost_nanousd=cost or 0,
                priced=cost is not None,
                price_version=caller.prices.version,
                latency_ms=latency,
                source="callback",
                prompt_hash=prompt_hash(kwargs.get("messages")),
            )
            caller.spool.put(row)
            ledger.record(caller.store, [row])
            caller.spool.done(row)

        def log_success_event(self, kwargs, response_obj, start_time, end_time):
            self._record(kwargs, response_obj, start_time, end_time)

        async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
            self._record(kwargs, response_obj, start_time, end_time)

    return ElfctlCallback


def llm_test(cfg, caller: Caller, team: str | None, model: str | None, api_base: str | None = None) -> dict:
    """`elfctl llm test`: one real call through the whole path (the caller's store, prices, keys)."""
    store = caller.store
    caller.spool.replay(store)
    team = team or "llm-test"
    policy = team_policy(cfg, store, team)
    kwargs: dict[str, Any] = {
        "messages": [{"role": "user", "content": "Reply with the word ok."}],
        "max_tokens": 5,
    }
    if model:
        kwargs["model"] = model
    if api_base:
        kwargs["api_base"] = api_base
    resp = caller.call(policy, {**kwargs, "model": model or (policy.chain or [None])[0]})
    info = resp._hidden_params["elfctl"]
    caller.recorder.close()  # the row is read back just below
    row = store.query(
        "SELECT prompt_tokens, completion_tokens FROM api_usage WHERE request_id = ?", (info["request_id"],)
    )[0]
    left = None
    if policy.budget and policy.budget.limited:
        left = {s.window: s.remaining for s in budgets.states(store, policy.budget)}
    return {
        "team": team,
        "requested_model": info["requested_model"],
        "model": info["model"],
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "cost_nanousd": info["cost_nanousd"],
        "priced": info["priced"],
        "latency_ms": info["latency_ms"],
        "fallback_reason": info["fallback_reason"],
        "budget_remaining_nanousd": left,
    }


# --- health -----------------------------------------------------------------------------------------


def provider_plan(app):
    """The providers the teams' LLM policies name (for `elfctl health`)."""
    from elfctl.services.llm import provider_health

    return provider_health.plan(app.teams_dir, lambda: app.prices)


def provider_probes(app, pl, deep: bool = False, timeout_s: float | None = None) -> dict:
    """`llm:<provider>` health probes; with deep, one real call each (key from the environment,
    else from the credential store, audited as `elfctl health --deep`)."""
    from elfctl.services.llm import provider_health

    cfg = app.config
    call_timeout = min(cfg.get("llm.timeout_s"), timeout_s or cfg.get("health.timeout_s"))

    def scopes_of(var: str) -> list[str]:
        return provider_health.stored_scopes(app.store, var)

    def stored_key(var: str) -> str | None:
        scopes = scopes_of(var)
        if not scopes:
            return None
        from elfctl.services.credentials import vault as credentials
        from elfctl.services.credentials.app import vault_for

        team = None if "" in scopes else scopes[0]  # a key kept for one team only
        got = credentials.resolve(vault_for(app, command="elfctl health --deep"), [var], team=team,
                                  required=False)
        return got[var].reveal() if var in got else None

    def deep_call(model: str, var: str) -> float:
        return provider_health.deep_call(model, var, call_timeout, stored_key)

    return provider_health.probes(pl, lambda: app.store, scopes_of, cfg.get("llm.breaker_reset_s"),
                                  deep_call if deep else None)
