"""The platform's own policies: for each resource at critical (or exhausted), the strategies of
`[fallback.<type>] strategies`, in order. Two act on the platform and are carried out here with
`--apply`, each change one actions-trail row:

- scale_down: a team whose reading is critical runs one replica fewer (services/deploy/scale.py,
  never below 1); once every reading of that type for the team is healthy again, it is restored.
- circuit_break: the store breaker `resource:<type>` (`resource:k8s_pod:<team>` for one team's
  pods) is opened, so every process guarded by it stops calling at once; it is closed when the
  type is healthy again.

The other five (retry, switch_provider, degrade_service, queue_request, use_cache) act on calls,
where they happen: team code through elfctl.resilience, and the gateway. They are listed as such
and nothing is done here. Without --apply every step says what it would do.
"""

from __future__ import annotations

from dataclasses import dataclass

from elfctl.errors import ConfigError, ElfError
from elfctl.services.actions import trail
from elfctl.services.resources.monitor import Snapshot
from elfctl.services.resources.status import BAD, STRATEGY_NAMES, TYPES, Reading

ACTOR = "resources --apply"
TEAM_SCALED = ("memory", "docker", "k8s_pod", "cpu")  # types whose readings name a team's replicas


@dataclass
class Step:
    type: str
    strategy: str
    target: str  # the team, the breaker, or the type
    trigger: str
    action: str  # what it does, in words
    result: str  # "would", "call path", "ok: ...", "skipped: ...", "failed: ..."
    team: str | None = None


def strategies(cfg) -> dict[str, list[str]]:
    """Each type's configured strategies, checked: an unknown name is a config error (exit 2)."""
    out = {}
    for t in TYPES:
        key = f"fallback.{t}.strategies"
        names = cfg.get(key)
        unknown = [n for n in names if n not in STRATEGY_NAMES]
        if unknown:
            raise ConfigError(f"{cfg.source(key)}: '{key}' names unknown strategy {unknown[0]!r}",
                              hint=f"use some of: {', '.join(STRATEGY_NAMES)}")
        out[t] = list(names)
    return out


def limits(cfg) -> dict[str, tuple[float, float]]:
    out = {}
    for t in TYPES:
        warn, crit = cfg.get(f"resources.{t}.warning"), cfg.get(f"resources.{t}.critical")
        if warn > crit:
            raise ConfigError(f"{cfg.source(f'resources.{t}.warning')}: 'resources.{t}.warning' ({warn:g}) is above "
                              f"'resources.{t}.critical' ({crit:g})",
                              hint=f"set resources.{t}.warning below resources.{t}.critical")
        out[t] = (warn, crit)
    return out


def breaker_name(type_: str, team: str | None = None) -> str:
    return f"resource:{type_}" + (f":{team}" if team and type_ == "k8s_pod" else "")


def _trigger(r: Reading) -> str:
    value = f" at {r.value:g}%" if r.value is not None else ""
    return f"{r.type} {r.subject} {r.status}{value}: {r.detail}"


def plan(snapshot: Snapshot, chosen: dict[str, list[str]], scaled: list[dict], open_breakers: set[str]) -> list[Step]:
    """What the policies call for in this snapshot. `scaled`: scaled_teams rows; `open_breakers`:
    names of the resource breakers that are open now."""
    steps: list[Step] = []
    seen: set[tuple[str, str]] = set()

    def add(step: Step) -> None:
        if (step.strategy, step.target) not in seen:
            seen.add((step.strategy, step.target))
            steps.append(step)

    for t in snapshot.types:
        for r in (r for r in t.readings if r.status in BAD):
            for s in chosen.get(t.type, []):
                if s == "scale_down":
                    if r.team and t.type in TEAM_SCALED:
                        add(Step(t.type, s, r.team, _trigger(r), f"lower {r.team}'s replicas by one (never below 1)",
                                 "would", r.team))
                elif s == "circuit_break":
                    name = breaker_name(t.type, r.team)
                    if name not in open_breakers:
                        add(Step(t.type, s, name, _trigger(r), f"open the breaker {name}", "would", r.team))
        calls = [s for s in chosen.get(t.type, []) if s not in ("scale_down", "circuit_break")]
        worst_bad = next((r for r in t.readings if r.status in BAD), None)
        if calls and worst_bad is not None:  # one row per type: these act where the calls are made
            add(Step(t.type, ", ".join(calls), t.type, _trigger(worst_bad),
                     "applied by the call path (elfctl.resilience, the gateway)", "call path"))
    for row in scaled:  # recovered: every reading of that type for the team healthy
        mine = [r for r in snapshot.type(row["resource"]).readings if r.team == row["team"]] \
            if row["resource"] in TYPES else []
        if mine and all(r.status == "healthy" for r in mine):
            add(Step(row["resource"], "restore", row["team"], f"{row['resource']} healthy for {row['team']}: "
                     + "; ".join(r.detail for r in mine),
                     f"restore {row['team']} to {row['original_replicas']} replicas", "would", row["team"]))
    for name in sorted(open_breakers):
        parts = name.split(":")
        type_, team = parts[1], (parts[2] if len(parts) > 2 else None)
        if type_ not in TYPES:
            continue
        readings = [r for r in snapshot.type(type_).readings if team is None or r.team == team]
        if readings and all(r.status == "healthy" for r in readings):
            add(Step(type_, "close_breaker", name, f"{type_} healthy" + (f" for {team}" if team else ""),
                     f"close the breaker {name}", "would", team))
    return steps


def open_resource_breakers(store) -> set[str]:
    rows = store.query("SELECT name FROM breaker_state WHERE name LIKE 'resource:%' AND state <> 'closed'")
    return {r["name"] for r in rows}


def apply(steps: list[Step], open_store, scale_down, restore) -> None:
    """Carry out the platform's steps in order, filling in each one's result. `scale_down(team,
    resource, trigger)` and `restore(team, trigger)` are services/deploy/scale.py's."""
    from elfctl.resilience import breaker

    for step in steps:
        if step.result != "would":
            continue
        try:
            if step.strategy == "scale_down":
                step.result = scale_down(step.team, step.type, step.trigger).result
            elif step.strategy == "restore":
                done = restore(step.team, step.trigger)
                step.result = done.result if done else "skipped: not scaled down by the platform"
            elif step.strategy in ("circuit_break", "close_breaker"):
                store = open_store()
                cb = breaker.make(store, step.target)
                cb.open() if step.strategy == "circuit_break" else cb.close()
                step.result = "ok: " + ("opened" if step.strategy == "circuit_break" else "closed")
                trail.record(store, trail.Action(step.type, step.trigger, step.strategy, step.result, ACTOR,
                                                 step.team, step.target))
        except ElfError as exc:
            step.result = f"failed: {exc.message}"
