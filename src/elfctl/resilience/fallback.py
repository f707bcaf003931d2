"""`@fallback(resource, strategies=[...])`: when a call fails, the strategies in order, each doing
its work, until one serves the call. The decorated function returns an `Outcome` (the value, which
strategy served it, the steps taken); when none serves, `FallbackFailed` carries the steps. Every
step taken is recorded in the actions trail (services/actions/trail.py).

    @fallback("api_quota", team="marketing", strategies=["circuit_break", "retry", "switch_provider",
              "degrade_service", "use_cache", "queue_request"],
              candidates=["gpt-4o-mini", "claude-3-haiku"], target_arg="model",
              degrade={"model": "gpt-4o-mini", "max_tokens": 100})
    def ask(prompt, model="gpt-4o", max_tokens=500): ...

    out = ask("hi");  out.value, out.served_by, out.steps

The strategies:
- circuit_break: the call (and its retries) go through the shared breaker named `resource`; while it
  is open the call is not made and the next strategies run at once.
- retry: the call again under a retry policy (`policy=`, default "quick").
- switch_provider: the next target of a chain: `candidates` is a list, or a callable returning one
  (a registry lookup of replicas, say). A callable candidate is called with the call's arguments;
  any other value replaces the keyword `target_arg` (an LLM model, a replica's URL, an MCP server).
- degrade_service: a cheaper call: `degrade` is a function taking the call's arguments, or a dict of
  keyword overrides (for an LLM call: a cheaper model and a lower max_tokens).
- use_cache: every successful call stores its response under the hash of its arguments; a failed
  call is served the fresh stored response (`cache_ttl`). An LLM response served so is recorded in
  the ledger at $0 (source "cache").
- queue_request: the call is put in the store's bounded queue (`queue_limit`, `queue_ttl`) and run
  again once the resource is healthy (`elfctl queue drain`, or by this process after the resource
  answers again). Serves the call with value None and `queued` set to the entry's id.
- scale_down: lowers the team's replicas through the deploy target (never below 1), and restores
  them after the next call that succeeds. Does not serve the call.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from elfctl.errors import InputError, OperationFailed
from elfctl.resilience import classify

STRATEGIES = ("retry", "switch_provider", "degrade_service", "queue_request", "use_cache", "scale_down",
              "circuit_break")
DRAIN_CHECK_S = 10.0  # how often a healthy call looks for queued calls of its resource to drain


@dataclass(frozen=True)
class Step:
    strategy: str
    target: str | None
    result: str  # ok | failed: ... | open: call not made | hit | miss | queued | scaled down ... | skipped: ...
    recorded: bool = field(default=False, repr=False, compare=False)  # already in the trail (by whoever acted)


@dataclass
class Outcome:
    value: Any
    served_by: str  # primary | retry | switch_provider | degrade_service | use_cache | queue_request
    steps: list[Step] = field(default_factory=list)
    queued: str | None = None  # the queue entry's id when queue_request served the call

    @property
    def degraded(self) -> bool:
        return self.served_by != "primary"


class FallbackFailed(OperationFailed):
    code = "fallback_failed"

    def __init__(self, resource: str, steps: list[Step], last: BaseException):
        tried = "; ".join(f"{s.strategy}: {s.result}" for s in steps) or "no strategy applied"
        super().__init__(f"{resource}: the call failed ({_short(last)}) and no fallback served it ({tried})",
                         hint="see `elfctl audit actions` for what was tried")
        self.resource, self.steps, self.last = resource, steps, last


def worth_fallback(exc: BaseException) -> bool:
    """A failure a fallback may get past: not a request the callee called wrong (400/422, a
    TypeError from bad arguments, elfctl's own input errors)."""
    if isinstance(exc, TypeError | InputError):
        return False
    return classify.status_of(exc) not in (400, 422)


@dataclass
class _Call:
    """One call the driver asks the pump to make: fn(*args, **kwargs), under `policy` when set."""

    fn: Callable
    args: tuple
    kwargs: dict
    policy: Any = None


def _short(exc: BaseException) -> str:
    from elfctl.redact import scrub

    return scrub(f"{type(exc).__name__}: {exc}")[:300]


def _name(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or str(obj)


def _is_llm_response(value: Any) -> bool:
    return isinstance(value, dict) and "choices" in value and "model" in value and "usage" in value


class Fallback:
    def __init__(self, fn: Callable, resource: str, strategies: list[str], *, team: str | None, policy: Any,
                 candidates: Any, target_arg: str, degrade: Any, cache_ttl: float | None, queue_limit: int | None,
                 queue_ttl: float | None, breaker: dict | None, store: Any, actor: str, when: Callable,
                 scaler: Any):
        self.fn, self.resource, self.strategies = fn, resource, strategies
        self.team, self.policy, self.candidates, self.target_arg = team, policy, candidates, target_arg
        self.degrade, self.cache_ttl, self.queue_limit, self.queue_ttl = degrade, cache_ttl, queue_limit, queue_ttl
        self.breaker_opts, self._store, self.actor, self.when, self.scaler = breaker or {}, store, actor, when, scaler
        self.is_async = inspect.iscoroutinefunction(fn)
        self._lock = threading.Lock()
        self._scaled_down = False  # this process lowered the team's replicas: restore after a success
        self._drain_checked = 0.0  # monotonic time of the last look for queued calls (0: look now)
        self._draining = False

    # -- the store and the config ------------------------------------------------------------------
    def store(self) -> Any:
        from elfctl.resilience import runtime

        return self._store if self._store is not None else runtime.store()

    def _setting(self, value: Any, key: str) -> Any:
        if value is not None:
            return value
        from elfctl.resilience import runtime

        return runtime.config().get(key)

    def _guarded(self, fn: Callable) -> Callable:
        """fn through the resource's breaker when circuit_break is a strategy."""
        if "circuit_break" not in self.strategies:
            return fn
        from elfctl.resilience import breaker as brk
        from elfctl.resilience import circuit

        cb = circuit.get(self.resource, self.breaker_opts.get("fail_max", 5),
                         self.breaker_opts.get("reset_timeout", 60), self._store)
        if inspect.iscoroutinefunction(fn):
            return functools.partial(brk.aguarded, cb, fn, counts=classify.is_retriable)
        return functools.partial(brk.guarded, cb, fn, counts=classify.is_retriable)

    def _request_key(self, args: tuple, kwargs: dict) -> str:
        from elfctl.services.resilience import cache

        return cache.key_of(self.resource, {"fn": f"{self.fn.__module__}:{self.fn.__qualname__}",
                                            "args": list(args), "kwargs": kwargs})

    # -- the driver: what to call next, and what was done -------------------------------------------
    def drive(self, args: tuple, kwargs: dict):
        """A generator shared by the sync and async wrappers: yields the _Call to make, receives
        ("ok", value) or ("err", exc); returns the Outcome (StopIteration.value) or raises."""
        from elfctl.resilience.breaker import CircuitOpen

        kind, value = yield _Call(self._guarded(self.fn), args, kwargs)
        if kind == "ok":
            self._after_success(args, kwargs, value)
            return Outcome(value, "primary")
        first = value
        if not self.when(first):
            raise first
        steps: list[Step] = []
        last = first
        if isinstance(first, CircuitOpen):
            steps.append(Step("circuit_break", self.resource, "open: call not made"))
        served: Outcome | None = None
        for strategy in self.strategies:
            if strategy == "circuit_break":
                continue
            if strategy == "retry":
                from elfctl.resilience import policies

                p = policies.named(self.policy)
                kind, value = yield _Call(self._guarded(self.fn), args, kwargs, p)
                steps.append(Step("retry", f"policy {p.name}", "ok" if kind == "ok" else f"failed: {_short(value)}"))
                if kind == "ok":
                    served = Outcome(value, "retry")
                else:
                    last = value
            elif strategy == "switch_provider":
                for cand in self._candidates(steps):
                    call = (_Call(cand, args, kwargs) if callable(cand)
                            else _Call(self.fn, args, {**kwargs, self.target_arg: cand}))
                    kind, value = yield call
                    steps.append(Step("switch_provider", _name(cand), "ok" if kind == "ok" else f"failed: {_short(value)}"))
                    if kind == "ok":
                        served = Outcome(value, "switch_provider")
                        break
                    last = value
            elif strategy == "degrade_service":
                if self.degrade is None:
                    steps.append(Step("degrade_service", None, "skipped: no degrade= given"))
                    continue
                if callable(self.degrade):
                    call, target = _Call(self.degrade, args, kwargs), _name(self.degrade)
                else:
                    call = _Call(self.fn, args, {**kwargs, **self.degrade})
                    target = ", ".join(f"{k}={v}" for k, v in self.degrade.items())
                kind, value = yield call
                steps.append(Step("degrade_service", target, "ok" if kind == "ok" else f"failed: {_short(value)}"))
                if kind == "ok":
                    served = Outcome(value, "degrade_service")
                else:
                    last = value
            elif strategy == "use_cache":
                served = self._from_cache(args, kwargs, steps)
            elif strategy == "queue_request":
                served = self._enqueue(args, kwargs, steps, last)
            elif strategy == "scale_down":
                self._scale_down(steps, _short(last))
            if served is not None:
                break
        self._record(steps, first)
        if served is None:
            raise FallbackFailed(self.resource, steps, last) from last
        served.steps = steps
        return served

    def _candidates(self, steps: list[Step]) -> list:
        cands = self.candidates
        if cands is None:
            steps.append(Step("switch_provider", None, "skipped: no candidates= given"))
            return []
        if callable(cands) and not isinstance(cands, list | tuple):
            try:
                cands = cands()
            except Exception as exc:  # noqa: BLE001 - a lookup that fails is one failed step
                steps.append(Step("switch_provider", _name(self.candidates), f"failed: candidates: {_short(exc)}"))
                return []
        if not cands:
            steps.append(Step("switch_provider", None, "skipped: no candidate"))
        return list(cands or [])

    def _from_cache(self, args: tuple, kwargs: dict, steps: list[Step]) -> Outcome | None:
        from elfctl.services.resilience import cache

        key = self._request_key(args, kwargs)
        try:
            value = cache.get(self.store(), key)
        except Exception as exc:  # noqa: BLE001
            steps.append(Step("use_cache", key.rsplit(":", 1)[-1][:16], f"failed: {_short(exc)}"))
            return None
        if value is cache.MISS:
            steps.append(Step("use_cache", key.rsplit(":", 1)[-1][:16], "miss"))
            return None
        result = "hit"
        if _is_llm_response(value):
            result = self._ledger_hit(value, kwargs)
        steps.append(Step("use_cache", key.rsplit(":", 1)[-1][:16], result))
        return Outcome(value, "use_cache")

    def _ledger_hit(self, value: dict, kwargs: dict) -> str:
        """An LLM response served from the cache: one ledger row at $0 (source cache)."""
        from elfctl.domain.clock import iso, now
        from elfctl.domain.usage import UsageRow, prompt_hash
        from elfctl.ids import new_id
        from elfctl.resilience.attribution import current
        from elfctl.services.cost import ledger

        tracked = current()
        team = self.team or (tracked.team if tracked else None)
        if not team:
            return "hit (not in the ledger: no team)"
        model = str(value.get("model") or kwargs.get("model") or "unknown")
        ledger.record(self.store(), [UsageRow(
            request_id=new_id(), ts=iso(now()), team=team, agent=tracked.agent if tracked else None,
            requested_model=str(kwargs.get("model") or model), model=model, cost_nanousd=0, source="cache",
            fallback_reason=f"{self.resource}: served from the response cache", latency_ms=0,
            prompt_hash=prompt_hash(kwargs.get("messages")))])
        return "hit (ledger: $0)"

    def _enqueue(self, args: tuple, kwargs: dict, steps: list[Step], last: BaseException) -> Outcome | None:
        from elfctl.services.resilience import queue

        try:
            entry = queue.enqueue(self.store(), self.resource, queue.target_of(self.fn), queue.payload_of(args, kwargs),
                                  self._setting(self.queue_limit, "resilience.queue_max"), team=self.team,
                                  ttl_s=self.queue_ttl, trigger=_short(last), actor=self.actor)
        except (ValueError, queue.QueueFull) as exc:
            steps.append(Step("queue_request", self.resource, f"failed: {getattr(exc, 'message', exc)}"))
            return None
        steps.append(Step("queue_request", entry, "queued", recorded=True))  # enqueue recorded it
        self._drain_checked = 0.0
        return Outcome(None, "queue_request", queued=entry)

    def _scaler(self):
        """A custom `scaler`, else services/deploy/scale.py through the project's App and deploy
        target (that one records each change in the actions trail itself)."""
        if self.scaler is not None:
            return self.scaler
        from elfctl.resilience import runtime
        from elfctl.services.deploy import scale

        fb = self

        class _Platform:
            records = True

            def scale_down(self, team, trigger=""):
                return scale.scale_down(runtime.app(), team, fb.resource, trigger, fb.actor).result

            def restore(self, team, trigger=""):
                done = scale.restore(runtime.app(), team, trigger, fb.actor)
                return done.result if done else "not scaled down"

        return _Platform()

    def _scale_down(self, steps: list[Step], trigger: str) -> None:
        if not self.team:
            steps.append(Step("scale_down", None, "skipped: no team= given"))
            return
        scaler = self._scaler()
        try:
            done = scaler.scale_down(self.team, trigger)
        except Exception as exc:  # noqa: BLE001
            steps.append(Step("scale_down", self.team, f"failed: {_short(exc)}", recorded=getattr(scaler, "records", False)))
            return
        self._scaled_down = True
        steps.append(Step("scale_down", self.team, f"scaled down{': ' + str(done) if done else ''}",
                          recorded=getattr(scaler, "records", False)))

    def _after_success(self, args: tuple, kwargs: dict, value: Any) -> None:
        """Bookkeeping of a call that succeeded: its response cached, replicas restored, queued calls
        drained. Failures here never turn the success into an error."""
        import logging

        log = logging.getLogger("elfctl.resilience")
        if "use_cache" in self.strategies:
            from elfctl.services.resilience import cache

            try:
                cache.put(self.store(), self.resource, self._request_key(args, kwargs), value,
                          self._setting(self.cache_ttl, "resilience.cache_ttl_s"))
            except Exception as exc:  # noqa: BLE001
                log.warning("%s: response not cached: %s", self.resource, exc)
        if self._scaled_down:
            self._restore()
        if "queue_request" in self.strategies:
            self._maybe_drain()

    def _restore(self) -> None:
        from elfctl.services.actions import trail

        with self._lock:
            if not self._scaled_down:
                return
            self._scaled_down = False
        scaler = self._scaler()
        try:
            done = scaler.restore(self.team, "the call succeeded again")
            result = f"restored{': ' + str(done) if done else ''}"
        except Exception as exc:  # noqa: BLE001 - tried again after the next success
            self._scaled_down = True
            result = f"failed: {_short(exc)}"
        if not getattr(scaler, "records", False):
            trail.record(self.store(), trail.Action(self.resource, "the call succeeded again", "restore", result,
                                                    self.actor, self.team, self.team))

    def _maybe_drain(self) -> None:
        t = time.monotonic()
        with self._lock:
            if self._draining or (self._drain_checked and t - self._drain_checked < DRAIN_CHECK_S):
                return
            self._drain_checked = t
            self._draining = True
        from elfctl.services.resilience import queue

        def run():
            try:
                if queue.pending(self.store(), self.resource):
                    queue.drain(self.store(), self.actor, self.resource, healthy=self._healthy)
            except Exception as exc:  # noqa: BLE001 - the rows stay queued for the next drain
                import logging

                logging.getLogger("elfctl.resilience").warning("%s: queue not drained: %s", self.resource, exc)
            finally:
                self._draining = False

        threading.Thread(target=run, name=f"elfctl-drain-{self.resource}", daemon=True).start()

    def _healthy(self, resource: str) -> bool:
        """The resource may take the queued calls: its circuit (if it has one) is not open."""
        rows = self.store().select("breaker_state", {"name": resource}, columns="state")  # over REST too
        return not rows or rows[0]["state"] == "closed"

    def _record(self, steps: list[Step], first: BaseException) -> None:
        """The steps in the actions trail, in one transaction (but those whoever acted recorded:
        the queue, services/deploy/scale.py)."""
        from contextlib import nullcontext

        from elfctl.services.actions import trail

        trigger = _short(first)
        try:
            store = self.store()
            # Supabase's REST API has no transaction: there each row is one call of elfctl_record_action
            with nullcontext(store) if store.dialect == "rest" else store.transaction() as tx:
                for s in steps:
                    if s.recorded:
                        continue
                    trail.record(tx, trail.Action(self.resource, trigger, s.strategy, s.result, self.actor,
                                                  self.team, s.target))
        except Exception as exc:  # noqa: BLE001 - the audit must not change what the caller gets
            import logging

            logging.getLogger("elfctl.resilience").warning("%s: fallback steps not audited: %s", self.resource, exc)


def _step(walk, outcome) -> tuple[bool, Any]:
    try:
        return False, next(walk) if outcome is None else walk.send(outcome)
    except StopIteration as done:
        return True, done.value


def fallback(resource: str, strategies: list[str] | tuple[str, ...] = ("retry",), *, team: str | None = None,
             policy: Any = "quick", candidates: Any = None, target_arg: str = "target", degrade: Any = None,
             cache_ttl: float | None = None, queue_limit: int | None = None, queue_ttl: float | None = None,
             breaker: dict | None = None, store: Any = None, actor: str = "elfctl.resilience",
             when: Callable[[BaseException], bool] = worth_fallback, scaler: Any = None) -> Callable[[Callable], Callable]:
    """Decorate a sync or async function with fallback strategies (see the module's doc). `when(exc)`:
    whether a failure is one to fall back from (default: not a call made wrong). `scaler`: an object
    with scale_down(team)/restore(team) (default: services/deploy/scale.py through the project)."""
    from elfctl.resilience.circuit import check_name

    check_name(resource)
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise ValueError(f"fallback({resource!r}): unknown strategy {unknown[0] if unknown else None!r}; "
                         f"use any of {', '.join(STRATEGIES)}")
    if team is not None:
        from elfctl.domain.names import check_team_name

        check_team_name(team)

    def decorate(fn: Callable) -> Callable:
        fb = Fallback(fn, resource, list(strategies), team=team, policy=policy, candidates=candidates,
                      target_arg=target_arg, degrade=degrade, cache_ttl=cache_ttl, queue_limit=queue_limit,
                      queue_ttl=queue_ttl, breaker=breaker, store=store, actor=actor, when=when, scaler=scaler)

        if fb.is_async:
            import asyncio

            async def arun(*args: Any, **kwargs: Any) -> Outcome:
                walk = fb.drive(args, kwargs)
                # the driver reads and writes the store: on a worker thread, never on the event loop
                finished, value = await asyncio.to_thread(_step, walk, None)
                while not finished:
                    try:
                        fn_ = value.policy.runner()(value.fn) if value.policy else value.fn
                        got = fn_(*value.args, **value.kwargs)
                        outcome = ("ok", await got if inspect.isawaitable(got) else got)
                    except Exception as exc:  # noqa: BLE001 - the driver decides
                        outcome = ("err", exc)
                    finished, value = await asyncio.to_thread(_step, walk, outcome)
                return value

            wrapper = functools.wraps(fn)(arun)
        else:

            def run(*args: Any, **kwargs: Any) -> Outcome:
                walk = fb.drive(args, kwargs)
                finished, value = _step(walk, None)
                while not finished:
                    try:
                        fn_ = value.policy.runner()(value.fn) if value.policy else value.fn
                        outcome = ("ok", fn_(*value.args, **value.kwargs))
                    except Exception as exc:  # noqa: BLE001
                        outcome = ("err", exc)
                    finished, value = _step(walk, outcome)
                return value

            wrapper = functools.wraps(fn)(run)
        wrapper.__elfctl_inner__ = fn  # what `queue drain` runs: the call itself, not its fallbacks
        wrapper.fallback = fb
        return wrapper

    return decorate
