"""`elfctl health` components `llm:<provider>`: one per provider the teams' LLM policies name
(team.yaml llm.model and llm.fallbacks). Each checks, in order:

- the key is present, by NAME only (environment, else the credential store's metadata);
- the circuit breakers of the provider's models, read from the store (`breaker_state`), so a circuit
  opened by a team's process shows here;
- with `--deep` only: one real call through litellm (max_tokens=1) to the provider's first model.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass

from elfctl.domain import llm_providers as rules
from elfctl.domain.health import Check
from elfctl.errors import ElfError


@dataclass
class Provider:
    name: str
    models: list[str]  # in the order the teams' chains name them
    teams: list[str]


def team_chains(teams_dir) -> tuple[dict[str, list[str]], list[str]]:
    """team -> [model, *fallbacks] for every valid team.yaml, and the errors of invalid ones."""
    from elfctl.adapters import team_files as team_mod

    chains: dict[str, list[str]] = {}
    errors: list[str] = []
    for path in team_mod.discover(teams_dir):
        try:
            spec = team_mod.load(path)
        except ElfError as exc:
            errors.append(exc.message)
            continue
        chain = [m for m in [spec.llm.model, *spec.llm.fallbacks] if m]
        if chain:
            chains[spec.name] = chain
    return chains, errors


def providers(chains: dict[str, list[str]], price_book: Callable[[], object]) -> tuple[list[Provider], list[str]]:
    """The providers of these chains; bare model names are resolved through the price map."""
    from elfctl.domain import pricing

    book = None

    def from_map(model: str) -> str | None:
        nonlocal book
        book = book or price_book()
        return pricing.map_provider(book, model)

    found, unknown = rules.models_by_provider(chains, from_map)
    return [Provider(n, e["models"], e["teams"]) for n, e in found.items()], unknown


def key_source(provider: str, stored_names: Callable[[str], list[str]]) -> tuple[str, str | None]:
    """(key variable name, where it was found: "environment", "credential store (...)" or None)."""
    var = rules.key_var(provider)
    if os.environ.get(var):
        return var, "environment"
    scopes = stored_names(var)
    if scopes:
        return var, "credential store (" + ", ".join(s or "global" for s in scopes) + ")"
    return var, None


def circuits(store, models: list[str], reset_s: float, now: dt.datetime | None = None) -> list[dict]:
    """Circuits of these models that are not closed: {model, state, opened_at, probe_in_s}."""
    if not models or "breaker_state" not in store.tables():
        return []
    # a select (REST serves it too; its filters are equality and IN only): the closed ones dropped here
    rows = [r for r in store.select("breaker_state", {"name": [f"llm:{m}" for m in models]},
                                    columns="name, state, opened_at", order="name") if r["state"] != "closed"]
    now = now or dt.datetime.now(dt.UTC)
    out = []
    for r in rows:
        probe_in = None
        if r["state"] == "open" and r["opened_at"]:
            opened = dt.datetime.fromisoformat(r["opened_at"])
            probe_in = max(0.0, (opened + dt.timedelta(seconds=reset_s) - now).total_seconds())
        out.append({"model": r["name"][4:], "state": r["state"], "opened_at": r["opened_at"],
                    "probe_in_s": probe_in})
    return out


def provider_probe(
    p: Provider,
    open_store: Callable[[], object],
    stored_names: Callable[[str], list[str]],
    breaker_reset_s: float,
    deep_call: Callable[[str, str], float] | None = None,
):
    """`deep_call(model, key_var)` makes the cheap real call and returns its latency in ms."""
    component = f"llm:{p.name}"
    used_by = f"used by {', '.join(p.teams)}"

    def probe() -> Check:
        facts = []
        if p.name not in rules.KEYLESS:
            var, where = key_source(p.name, stored_names)
            if where is None:
                # warn, not fail: the platform is up and every other team works; `--strict` makes
                # it fail for CI gates. A fresh `make up` without provider keys must still succeed.
                return Check(component, "warn", output=f"{var} is not set ({used_by})",
                             hint=f"export {var}=..., or `elfctl creds set {var}`")
            facts.append(f"{var} in {where}")
        bad = circuits(open_store(), p.models, breaker_reset_s)
        status = "pass"
        if bad:
            described = []
            for c in bad:
                if c["state"] == "open" and c["probe_in_s"]:
                    status = "fail"
                    described.append(f"circuit {c['model']} open since {c['opened_at']} "
                                     f"(probe call in {c['probe_in_s']:.0f}s)")
                else:
                    status = "warn" if status == "pass" else status
                    described.append(f"circuit {c['model']} {c['state']} (next call probes it)")
            facts.extend(described)
        hint = ("calls fall back to the next model in the teams' chains; check the provider's status"
                if status != "pass" else None)
        latency = None
        if deep_call is not None and status != "fail":
            model = p.models[0]
            try:
                latency = deep_call(model, rules.key_var(p.name))
                facts.append(f"{model} answered in {latency:.0f} ms")
            except ElfError as exc:
                return Check(component, "fail", output="; ".join([*facts, exc.message]),
                             hint=exc.hint or "check the provider", latency_ms=None)
        return Check(component, status, len(bad), "open_circuits",
                     output="; ".join(facts) + f" ({used_by})", hint=hint, latency_ms=latency)

    return probe


@dataclass
class Plan:
    """What the teams' LLM policies name: providers, models with no known provider, bad team.yaml."""

    providers: list[Provider]
    unknown: list[str]
    errors: list[str]

    @property
    def models(self) -> set[str]:
        return {m for p in self.providers for m in p.models}


def plan(teams_dir, price_book: Callable[[], object]) -> Plan:
    """The providers the teams' LLM policies name. price_book() loads the price map, only needed
    (and only called) for bare model names: the map takes time to load."""
    chains, errors = team_chains(teams_dir)
    if not chains:
        return Plan([], [], errors)
    try:
        found, unknown = providers(chains, price_book)
    except ElfError as exc:  # e.g. an unreadable prices file: reported as the llm:config component
        return Plan([], [], [*errors, exc.message])
    return Plan(found, unknown, errors)


def probes(pl: Plan, open_store: Callable[[], object], scopes_of: Callable[[str], list[str]],
           reset_s: float, deep_call: Callable[[str, str], float] | None = None) -> dict:
    """`llm:<provider>` probes (none when no team names a model); deep_call(model, key_var) makes
    the one real call of `health --deep`."""
    out: dict = {}
    if pl.errors:
        message = "; ".join(pl.errors)
        out["llm:config"] = lambda: Check("llm:config", "fail", output=message,
                                          hint="fix it (`elfctl team validate`)")
    if pl.unknown:
        names = ", ".join(pl.unknown)
        out["llm:unknown"] = lambda: Check(
            "llm:unknown", "warn", len(pl.unknown), "models",
            output=f"no provider known for {names}",
            hint="write models as provider/model (e.g. openai/gpt-4o-mini)")
    if deep_call is not None and pl.providers:
        # Import the SDK before the checks start (seconds on a busy host): the per-check timeout
        # bounds the provider's answer, not Python's import of litellm.
        from elfctl.adapters import litellm_client

        litellm_client.sdk()
    for p in pl.providers:
        out[f"llm:{p.name}"] = provider_probe(p, open_store, scopes_of, reset_s, deep_call=deep_call)
    return out


def stored_scopes(store, name: str) -> list[str]:
    """Scopes ('' = global) where the credential store holds `name`: metadata only, no value read."""
    if "credentials" not in store.tables():
        return []
    return [r["scope"] for r in store.select("credentials", {"name": name}, columns="scope", order="scope")]


def deep_call(model: str, key_var: str, timeout_s: float, stored_key: Callable[[str], str | None]) -> float:
    """One real call with max_tokens=1, not billed to a team and not counted by the breaker. The
    key: the environment's key_var, else stored_key(key_var) (the credential store)."""
    import time

    from elfctl.adapters import litellm_client

    kwargs: dict = {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1,
                    "timeout": timeout_s}
    value = os.environ.get(key_var)
    if value:
        from elfctl.redact import register_secret

        register_secret(value)
        kwargs["api_key"] = value
    elif stored := stored_key(key_var):
        kwargs["api_key"] = stored
    started = time.perf_counter()
    litellm_client.complete(model, kwargs)
    return (time.perf_counter() - started) * 1000
