"""The api_quota policy as the gateway applies it, for the two quotas a call can run out of:

- a team's budget: a team whose budget use is critical (`[resources.api_quota] critical`, default 95%
  of a window's limit) is served by the next cheaper model of its chain instead of its first one,
  while `degrade_service` is among `[fallback.api_quota] strategies`;
- a provider's rate limit: each answer's `x-ratelimit-*` headers are kept (`note`, through the
  `Watched` client: answers, 429s and stream heads alike; table provider_limits, migration 0105); a
  model whose requests or tokens window is critically used, and not yet refilled, is passed over for
  the next model of the chain that is not: `switch_provider` when that model is another provider's,
  `degrade_service` when it is the same provider's, each only while named in
  `[fallback.api_quota] strategies`. When every later model is limited too, the asked model is
  called (its 429 is the Caller's to handle).

Entering and leaving either state is one row each in the actions trail (per gateway process, per team).
A provider's 429 is the Caller's: it waits out `Retry-After` within the model's time budget, falls
back, and the gateway answers 429 with `Retry-After` when every model is limited; the limit the 429
states is kept all the same, so the next calls pass the model over until its reset."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

from elfctl.domain import ratelimit
from elfctl.domain.clock import now as utcnow
from elfctl.errors import ElfError
from elfctl.services.actions import trail
from elfctl.services.cost import budgets

log = logging.getLogger("elfctl.gateway")

TTL_S = 1.0  # budget use and the stored rate limits are read again after this long
_seen: dict[str, tuple[float, float | None]] = {}  # team -> (read at, critical use % or None)
_lock = threading.Lock()

# Provider rate limits: what this process saw (or read from the store, at most once per TTL_S)
_limits: dict[tuple[str, str], ratelimit.Limit] = {}
_limits_read = [float("-inf")]
_written: dict[tuple[int, tuple[str, str]], tuple[float, bool]] = {}  # (store, key) -> (written at, was critical)
_rerouted: dict[tuple[str, str], str] = {}  # (team, model) -> the model serving instead, while limited
_warned: set[str] = set()  # store problems already logged (once per process, not once a second)


def _warn_once(what: str, exc: ElfError) -> None:
    if what not in _warned:
        _warned.add(what)
        log.warning("%s: %s", what, exc.message)


def critical_use(config, store, policy) -> float | None:
    """The team's highest window use in percent when it is at or past the critical threshold, else
    None. Read at most once per TTL_S per team; transitions are recorded in the trail."""
    b = policy.budget
    if b is None or not b.limited or len(policy.chain) < 2:
        return None
    if "degrade_service" not in (config.get("fallback.api_quota.strategies") or []):
        return None
    now = time.monotonic()
    with _lock:
        hit = _seen.get(policy.team)
    if hit is not None and now - hit[0] < TTL_S:
        return hit[1]
    use = max((100.0 * s.spent / s.limit for s in budgets.states(store, b) if s.limit), default=0.0)
    critical = use if use >= config.get("resources.api_quota.critical") else None
    with _lock:
        before = _seen.get(policy.team, (0.0, None))[1]
        _seen[policy.team] = (now, critical)
    if (before is None) != (critical is None):
        first, second = policy.chain[0], policy.chain[1]
        trail.record(store, trail.Action(
            "api_quota", f"budget {use:.0f}% used", "degrade_service",
            "ok" if critical is not None else "restored", "gateway", team=policy.team,
            target=f"{first} -> {second}" if critical is not None else f"{second} -> {first}"))
    return critical


# -- provider rate limits ----------------------------------------------------------------------------


def key(model: str) -> tuple[str, str]:
    """(provider, model) as provider_limits keys them: `openai/gpt-4o` and `gpt-4o` are one model."""
    provider, _, name = model.rpartition("/")
    return provider or "openai", name


def _headers(response: Any) -> dict[str, str]:
    limits = getattr(response, "limits", None)  # the fast path's Forwarded
    if isinstance(limits, dict):
        return limits
    # litellm's answer: the provider's headers as `llm_provider-x-ratelimit-*` (resets included)
    return ratelimit.headers_of((getattr(response, "_hidden_params", None) or {}).get("additional_headers") or {})


def _is_critical(lim: ratelimit.Limit | None, critical: float) -> float | None:
    """The used percent when critical now, else None."""
    if lim is None:
        return None
    used = lim.used_percent(utcnow())
    return used if used is not None and used >= critical else None


def note(config, store, model: str, headers: dict[str, str]) -> None:
    """Keep the rate limit `headers` (x-ratelimit-*, lower-case) state for `model`. The store row is
    written at most once per TTL_S per model, and at once when the model becomes critical or stops
    being so, so other gateways and `elfctl resources` see it; on an event loop the write runs on a
    worker thread. Never fails the call."""
    if not headers:
        return
    k = key(model)
    lim = ratelimit.parse(*k, headers, utcnow())
    if lim is None:
        return
    crit = _is_critical(lim, config.get("resources.api_quota.critical")) is not None
    t = time.monotonic()
    with _lock:
        _limits[k] = lim
        last = _written.get((id(store), k))
        if last is not None and t - last[0] < TTL_S and last[1] == crit:
            return
        _written[(id(store), k)] = (t, crit)
    asyncio = sys.modules.get("asyncio")  # no loop runs where asyncio was never imported
    try:
        loop = asyncio.get_running_loop() if asyncio else None
    except RuntimeError:
        loop = None
    if loop is not None:
        loop.run_in_executor(None, _save, store, lim)
    else:
        _save(store, lim)


def _save(store, lim: ratelimit.Limit) -> None:
    from elfctl.services.resources import ratelimits

    try:
        ratelimits.save(store, lim)
    except ElfError as exc:  # an old store (no 0105) or a store hiccup: the answer is served all the same
        _warn_once(f"provider rate limit of {lim.provider}/{lim.model} not recorded", exc)


class Watched:
    """An LLM client (adapters: litellm_client, openai_http's Routed) whose answers' rate limits are
    kept (`note`): each Answer's, each error's (a 429 states the limit it hit, `LLMError.limits`), and
    each stream's head (the OpenAI-protocol client's `on_limits`). Everything else is the client's."""

    def __init__(self, client, config, store):
        self._client = client
        self._note = lambda model, headers: note(config, store, model, headers)
        http = getattr(client, "http", client)  # Routed forwards OpenAI-protocol streams through .http
        if hasattr(http, "on_limits"):
            http.on_limits = self._note

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def _error(self, model: str, exc: BaseException) -> None:
        limits = getattr(exc, "limits", None)
        if limits:
            try:
                self._note(model, limits)
            except Exception:  # noqa: BLE001 (the call's own error is what the caller must see)
                log.debug("rate limit of %s not kept", model, exc_info=True)

    def complete(self, model: str, kwargs: dict):
        try:
            answer = self._client.complete(model, kwargs)
        except ElfError as exc:
            self._error(model, exc)
            raise
        self._note(model, _headers(answer.response))
        return answer

    async def acomplete(self, model: str, kwargs: dict):
        try:
            answer = await self._client.acomplete(model, kwargs)
        except ElfError as exc:
            self._error(model, exc)
            raise
        self._note(model, _headers(answer.response))
        return answer


def _refresh(store) -> None:
    t = time.monotonic()
    if t - _limits_read[0] < TTL_S:
        return
    _limits_read[0] = t
    from elfctl.services.resources import ratelimits

    try:
        stored = ratelimits.latest(store)
    except ElfError as exc:
        _warn_once("provider rate limits not read", exc)
        return
    with _lock:
        for k, lim in stored.items():
            mine = _limits.get(k)
            if mine is None or mine.observed_at < lim.observed_at:
                _limits[k] = lim


def serving(config, store, policy, model: str) -> str:
    """The model of the team's chain that serves a request for `model` (a chain name): the next cheaper
    one while the team's budget use is critical (asked for its first model), then past every model whose
    provider rate limit is critical, as far as the configured strategies allow."""
    chain = policy.chain
    if model == chain[0] and critical_use(config, store, policy) is not None:
        model = chain[1]
    strategies = config.get("fallback.api_quota.strategies") or []
    if len(chain) < 2 or not ({"switch_provider", "degrade_service"} & set(strategies)):
        return model
    _refresh(store)
    critical = config.get("resources.api_quota.critical")
    asked, i = model, chain.index(model)
    with _lock:
        used = _is_critical(_limits.get(key(asked)), critical)
        if used is not None:
            for nxt in chain[i + 1:]:
                if _strategy(asked, nxt) not in strategies:
                    break
                if _is_critical(_limits.get(key(nxt)), critical) is None:
                    model = nxt
                    break
        before = _rerouted.get((policy.team, asked))
        if model != asked:
            _rerouted[(policy.team, asked)] = model
        else:
            _rerouted.pop((policy.team, asked), None)
        lim = _limits.get(key(asked))
    if model != asked and before != model:
        trail.record(store, trail.Action(
            "api_quota", f"{asked} rate limit {used:.0f}% used: {lim.describe(utcnow())}", _strategy(asked, model),
            "ok", "gateway", team=policy.team, target=f"{asked} -> {model}"))
    elif model == asked and before is not None:
        what = "no longer critical" if used is None else f"{used:.0f}% used, every later model limited too"
        trail.record(store, trail.Action(
            "api_quota", f"{asked} rate limit {what}: {lim.describe(utcnow()) if lim else 'refilled'}",
            _strategy(asked, before), "restored", "gateway", team=policy.team, target=f"{before} -> {asked}"))
    return model


def _strategy(frm: str, to: str) -> str:
    return "switch_provider" if key(frm)[0] != key(to)[0] else "degrade_service"
