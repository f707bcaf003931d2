"""One budgeted, costed, fallback-aware LLM call: the use case behind `elfctl.llm.completion`.

For each model of the team's chain (preferred, then cheaper ones, then other providers):
  1. reserve the call's worst case in the budget (prompt priced exactly, output at max_tokens or the
     cap) against the model that would be billed; at a limit apply the budget's action;
  2. call it through the model's circuit breaker (`llm:<model>`), retrying transient errors, all
     within the model's time budget (`retry_max_time_s`: each attempt's timeout is what is left of
     it, and no attempt starts once it is spent), so a hung model hands over to the next one in time;
  3. on failure release the reservation and move to the next model, remembering why;
  4. on success spool the usage row and return the response; a background writer records it
     (settling the reservation) in one transaction (`recorder.Recorder`).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from elfctl.domain import budget as bmod
from elfctl.domain.budget import Budget
from elfctl.domain.clock import iso
from elfctl.domain.pricing import NANO, PriceBook, Tokens, cost_nano
from elfctl.domain.usage import UsageRow, prompt_hash
from elfctl.errors import InputError
from elfctl.ids import new_id
from elfctl.ports import Store
from elfctl.resilience import breaker as brk
from elfctl.resilience import retrying
from elfctl.services.cost import budgets, ledger
from elfctl.services.llm.recorder import Recorder
from elfctl.services.llm.spool import Spool
from elfctl.services.telemetry.hooks import OFF as NO_TRACE

log = logging.getLogger("elfctl.llm")


@dataclass(frozen=True)
class Settings:
    timeout_s: float = 30.0
    retry_max_time_s: float = 20.0
    retry_max_tries: int = 3
    retry_base_s: float = 0.25
    breaker_fail_max: int = 5
    breaker_reset_s: float = 60.0
    output_cap_tokens: int = 4096
    reservation_ttl_s: float = 300.0
    record: str = "background"  # background: commit from the writer thread | sync: before returning


@dataclass
class Policy:
    team: str
    chain: list[str]
    budget: Budget | None = None
    agent: str | None = None
    revision: int | None = None  # the team's deployed revision (gateway keys), recorded on each row


@dataclass
class Attempt:
    model: str
    reservation: budgets.Reservation | None = None
    reasons: list[str] = field(default_factory=list)


def _step(walk, outcome) -> tuple[bool, Any]:
    """Advance a call's driver: (False, next model) or (True, the result). StopIteration itself
    cannot cross from a worker thread into an asyncio future."""
    try:
        return False, next(walk) if outcome is None else walk.send(outcome)
    except StopIteration as done:
        return True, done.value


class Caller:
    def __init__(
        self,
        store: Store,
        prices: PriceBook,
        client: Any,
        spool: Spool,
        settings: Settings,
        warn=None,
        key_for=None,
        trace=None,
    ):
        self.store, self.prices, self.client, self.spool, self.settings = (
            store,
            prices,
            client,
            spool,
            settings,
        )
        self.warn = warn or (lambda msg: log.warning("%s", msg))
        self.recorder = Recorder(store, spool, self.warn)
        self._breakers: dict[str, Any] = {}
        # (provider, team) -> api key or None: each model of the chain gets its own provider's key
        self.key_for = key_for
        self._attempts: dict[tuple[str, bool], Any] = {}
        self.trace = trace or NO_TRACE  # services/telemetry: spans and metrics of each call and attempt

    def _keyed(self, model: str, team: str, kwargs: dict) -> dict:
        """kwargs with the api_key of `model`'s provider, unless the caller passed one."""
        provider_of = getattr(self.client, "provider_of", None)
        provider = provider_of(model) if provider_of else None
        if self.key_for is None or "api_key" in kwargs or not provider:
            return kwargs
        key = self.key_for(provider, team)
        return {**kwargs, "api_key": key} if key else kwargs

    # -- configuration checks ----------------------------------------------------------------
    def check(self, policy: Policy) -> None:
        """Refuse, before any call, a budgeted team whose chain names a model with no price."""
        if not policy.chain:
            raise InputError(
                f"team {policy.team}: no model to call",
                hint=f"pass model=... or set llm.model in teams/{policy.team}/team.yaml",
            )
        if policy.budget and policy.budget.limited:
            for m in policy.chain:
                if self.prices.lookup(m) is None:
                    raise InputError(
                        f"team {policy.team}: model {m} has no price, so its budget cannot be enforced",
                        hint="add it to the price overrides file (llm.prices_file) or remove it "
                        "from llm.model / llm.fallbacks",
                    )

    def breaker(self, model: str):
        if model not in self._breakers:
            s = self.settings
            # A probe is one attempt, and no attempt outlives the model's time budget: a probe slot
            # older than that (plus a second for its store writes) belongs to a dead process.
            self._breakers[model] = brk.make(
                self.store, f"llm:{model}", s.breaker_fail_max, s.breaker_reset_s, s.retry_max_time_s + 1.0
            )
        return self._breakers[model]

    # -- budget --------------------------------------------------------------------------------
    def estimate(self, model: str, kwargs: dict[str, Any]) -> int:
        price = self.prices.lookup(model)
        if price is None:
            return 0
        out = kwargs.get("max_tokens") or kwargs.get("max_completion_tokens")
        if not out:
            out = min(
                self.settings.output_cap_tokens, price.max_output_tokens or self.settings.output_cap_tokens
            )
        prompt = self.client.count_prompt_tokens(model, kwargs)
        return cost_nano(price, Tokens(prompt=prompt, completion=int(out)))

    def _reserve(self, policy: Policy, model: str, kwargs: dict, has_next: bool) -> tuple[str, Any]:
        """('go', reservation|None) or ('next', reason). Raises BudgetExceeded for `block`."""
        b = policy.budget
        if b is None or not b.limited:
            return "go", None
        need = self.estimate(model, kwargs)
        ttl = max(
            self.settings.reservation_ttl_s,
            self.settings.timeout_s * self.settings.retry_max_tries + self.settings.retry_max_time_s + 30,
        )
        self.recorder.flush_owed()  # usually a no-op: the writer is done by the next call
        try:
            res = self._reserve_settled(b, need, ttl)
        except budgets.Refused as r:
            if b.hard_action == "downgrade" and has_next:
                return "next", f"{model}: {bmod.WINDOW_ADJ[r.state.window]} budget reached"
            if b.hard_action == "warn":
                self.warn(
                    f"team {b.team}: {bmod.WINDOW_ADJ[r.state.window]} budget "
                    f"{bmod.fmt_usd(r.state.limit)} reached "
                    f"(spent {bmod.fmt_usd(r.state.spent)}); calling {model} anyway (action warn)"
                )
                return "go", budgets.reserve(self.store, b, need, ttl, force=True)
            raise bmod.exceeded_error(b.team, r.state, model, need) from None
        if res.level == "soft":
            if b.soft_action == "downgrade" and has_next:
                budgets.release(self.store, res.id)
                return "next", f"{model}: soft budget limit ({b.soft_ratio:.0%}) reached"
            if b.soft_action == "block":
                budgets.release(self.store, res.id)
                s = max(res.states, key=lambda s: s.ratio())
                raise bmod.exceeded_error(b.team, s, model, need)
            self.warn(f"team {b.team}: past {b.soft_ratio:.0%} of its budget")
        return "go", res

    def _reserve_settled(self, b: Budget, need: int, ttl: float) -> budgets.Reservation:
        """Reserve; a refusal or a soft-limit answer is only trusted once this process's own answered
        calls are settled (until the writer commits them, their reservations still hold their
        worst case, which is usually more than they cost)."""
        try:
            res = budgets.reserve(self.store, b, need, ttl)
            if res.level == "ok" or self.recorder.idle():
                return res
            budgets.release(self.store, res.id)
        except budgets.Refused:
            if self.recorder.idle():
                raise
        self.recorder.flush()
        return budgets.reserve(self.store, b, need, ttl)

    # -- the call --------------------------------------------------------------------------
    def _attempt_fn(self, model: str, is_async: bool, call=None):
        """The model's call through its breaker and the retry policy, built once per model: `fn(kwargs)`.
        `call(client, model, kwargs)`, async, replaces the client's acomplete (a stream's opening)."""
        key = (model, is_async, call)
        fn = self._attempts.get(key)
        if fn is not None:
            return fn
        cb = self.breaker(model)

        def counts(e):  # a bad request says nothing about the provider's health
            return getattr(e, "kind", "") != "bad_request"

        s = self.settings

        def bounded(kwargs, deadline):  # the attempt's timeout: at most what is left of the budget
            asked = kwargs.get("timeout")
            asked = asked if isinstance(asked, int | float) else s.timeout_s
            left = deadline.left()
            if asked <= left:
                return {**kwargs, "timeout": asked}
            # litellm keeps one HTTP client per distinct timeout: a raw remaining time would build a new
            # client (and connection) on every call and grow that cache without end. Tenths of a second,
            # rounded down, keep the budget (giving up at most 0.1 s of it) and reuse a few clients.
            return {**kwargs, "timeout": max(retrying.MIN_ATTEMPT_S, math.floor(left * 10) / 10)}

        if is_async:
            acall = self.client.acomplete if call is None else functools.partial(call, self.client)

            async def once(kwargs, deadline):
                return await brk.aguarded(cb, acall, model, bounded(kwargs, deadline), counts=counts)
        else:

            def once(kwargs, deadline):
                return brk.guarded(cb, self.client.complete, model, bounded(kwargs, deadline), counts=counts)

        fn = self._attempts[key] = retrying.policy(
            lambda e: bool(getattr(e, "transient", False)),
            lambda e: getattr(e, "retry_after", None),
            max_time=s.retry_max_time_s,
            max_tries=s.retry_max_tries,
            base=s.retry_base_s,
        )(self.trace.attempt(model, once))
        return fn

    def _prepare(self, policy: Policy, kwargs: dict) -> tuple[str, list[str], dict]:
        kwargs = dict(kwargs)
        request_id = kwargs.pop("request_id", None) or new_id()
        requested = kwargs.pop("model", None) or (policy.chain[0] if policy.chain else None)
        chain = [requested] + [m for m in policy.chain if m != requested] if requested else []
        self.check(Policy(policy.team, chain, policy.budget))
        kwargs.setdefault("timeout", self.settings.timeout_s)
        kwargs.setdefault("max_retries", 0)
        meta = dict(kwargs.get("metadata") or {})
        meta["elfctl_request_id"] = request_id  # the CustomLogger callback skips calls made here
        kwargs["metadata"] = meta
        return request_id, chain, kwargs

    def _drive(self, policy: Policy, request_id: str, chain: list[str], kwargs: dict):
        """The chain walk, shared by call and acall: yields each model to call and receives
        ("ok", answer) or ("err", exception); returns the response (StopIteration.value)."""
        reasons: list[str] = []
        failures: list[BaseException] = []
        started = time.perf_counter()
        for i, model in enumerate(chain):
            verdict, res = self._reserve(policy, model, kwargs, i + 1 < len(chain))
            if verdict == "next":
                reasons.append(res)
                continue
            t0 = time.perf_counter()
            try:
                kind, value = yield model
            except GeneratorExit:  # the caller gave up mid-attempt (a cancelled task): free the budget now
                if res:
                    budgets.release(self.store, res.id)
                raise
            if kind == "ok":
                return self._finish(policy, request_id, chain[0], value, res, reasons, t0, kwargs.get("messages"))
            if res:
                budgets.release(self.store, res.id)
            if getattr(value, "kind", "") == "bad_request":
                raise value
            spent = time.perf_counter() - t0
            failures.append(value)
            reasons.append(f"{model}: {getattr(value, 'kind', type(value).__name__)} after {spent:.1f}s")
        return self._all_failed(policy, request_id, chain, reasons, started, failures)

    def _start(self, policy: Policy, kwargs: dict):
        """The call's driver and each model's kwargs with its key (read before any reservation)."""
        request_id, chain, kwargs = self._prepare(policy, kwargs)
        warm = getattr(self.client, "sdk", None)
        if warm:  # the SDK's one-off import (~4 s) is not charged to the first model's time budget
            warm()
        keyed = {m: self._keyed(m, policy.team, kwargs) for m in chain}
        return self.trace.walk(self._drive(policy, request_id, chain, kwargs), policy, request_id, chain, kwargs), keyed

    def call(self, policy: Policy, kwargs: dict) -> Any:
        walk, keyed = self._start(policy, kwargs)
        try:
            model = next(walk)
            while True:
                try:
                    outcome = ("ok", self._attempt_fn(model, False)(keyed[model]))
                except Exception as exc:  # noqa: BLE001 - the walk decides: next model or raise
                    outcome = ("err", exc)
                model = walk.send(outcome)
        except StopIteration as done:
            return done.value

    async def acall(self, policy: Policy, kwargs: dict) -> Any:
        """As `call`, for asyncio. The store work around each attempt (keys, which may derive the
        credential key; reservations; breakers; recording) runs on a worker thread, so the event loop
        keeps serving the program's other coroutines meanwhile."""
        import asyncio

        walk, keyed, attempts, (finished, value) = await self._aopen(policy, kwargs)
        while not finished:
            try:
                outcome = ("ok", await attempts[value](keyed[value]))
            except Exception as exc:  # noqa: BLE001
                outcome = ("err", exc)
            finished, value = await asyncio.to_thread(_step, walk, outcome)
        return value

    def _prelude(self, policy: Policy, kwargs: dict, call=None):
        """An async call's start, where blocking on the store is allowed (a worker thread): its walk,
        each model's kwargs and attempt (see _attempt_fn for `call`), and the walk's first step."""
        walk, keyed = self._start(policy, kwargs)
        attempts = {m: self._attempt_fn(m, True, call) for m in keyed}  # a new breaker writes its row
        return walk, keyed, attempts, _step(walk, None)

    async def _aopen(self, policy: Policy, kwargs: dict, call=None):
        import asyncio

        return await asyncio.to_thread(self._prelude, policy, kwargs, call)

    def _finish(
        self, policy: Policy, request_id: str, requested: str, answer, res, reasons, t0, messages=None
    ) -> Any:
        latency = int((time.perf_counter() - t0) * 1000)
        tokens = Tokens(answer.prompt, answer.completion, answer.cached, answer.cache_write, answer.reasoning)
        cost = self.prices.cost(answer.model, tokens)
        row = UsageRow(
            request_id=request_id,
            ts=iso(dt.datetime.now(dt.UTC)),
            team=policy.team,
            agent=policy.agent,
            requested_model=requested,
            model=answer.model,
            provider=answer.provider,
            prompt_tokens=answer.prompt,
            completion_tokens=answer.completion,
            cached_tokens=answer.cached,
            cache_write_tokens=answer.cache_write,
            reasoning_tokens=answer.reasoning,
            cost_nanousd=cost or 0,
            priced=cost is not None,
            price_version=self.prices.version,
            latency_ms=latency,
            fallback_reason="; ".join(reasons) or None,
            source="elfctl",
            reservation_id=res.id if res else None,
            prompt_hash=prompt_hash(messages),
            revision=policy.revision,
        )
        self.trace.finished(row)
        self.spool.put(row)  # the durability point: a kill from here on is replayed at the next start
        if self.settings.record == "sync":
            ledger.record(self.store, [row])
            self.spool.done(row)
        else:
            # A call that cost more than it reserved (the estimate missed prompt tokens) must be
            # settled before this process reserves again (see _reserve): the overshoot then stays
            # within the estimation error of the calls in flight. Any other row holds at least its
            # cost in the counters until the writer settles it.
            self.recorder.submit(row, owed=res is not None and row.cost_nanousd > res.amount)
        if cost is None:
            self.warn(
                f"model {answer.model} has no price: call recorded as unpriced (team {policy.team}); "
                "add it to the price overrides file"
            )
        attach(answer.response, row)
        return answer.response

    def _all_failed(self, policy: Policy, request_id: str, chain: list[str], reasons: list[str], started: float,
                    failures: list[BaseException]):
        from elfctl.adapters.litellm_client import LLMError

        if chain:
            row = UsageRow(
                request_id=request_id,
                ts=iso(dt.datetime.now(dt.UTC)),
                team=policy.team,
                agent=policy.agent,
                requested_model=chain[0],
                model=chain[-1],
                outcome="error",
                latency_ms=int((time.perf_counter() - started) * 1000),  # the whole call, every model
                fallback_reason="; ".join(reasons) or None,
                price_version=self.prices.version,
                revision=policy.revision,
            )
            ledger.record(self.store, [row])
        err = LLMError(
            f"team {policy.team}: every model failed ({'; '.join(reasons)})",
            hint="see `elfctl health` for open circuits; check the providers and keys",
            kind="exhausted",
        )
        err.causes = tuple(failures)  # each model's error, in chain order (the gateway answers by the last)
        raise err


def attach(response: Any, row: UsageRow) -> None:
    """Put the cost and the answering model on litellm's response (`response._hidden_params['elfctl']`
    and, where the object allows it, `response.elfctl`)."""
    info = {
        "request_id": row.request_id,
        "team": row.team,
        "requested_model": row.requested_model,
        "model": row.model,
        "cost_nanousd": row.cost_nanousd,
        "priced": row.priced,
        "cost_usd": str(Decimal(row.cost_nanousd) / NANO),
        "fallback_reason": row.fallback_reason,
        "latency_ms": row.latency_ms,
        "price_version": row.price_version,
    }
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, dict):
        hidden["elfctl"] = info
    try:
        response.elfctl = info
    except Exception:  # noqa: BLE001 - a strict model class: _hidden_params still has it
        pass
