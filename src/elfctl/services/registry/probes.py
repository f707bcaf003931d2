"""The platform's own probes of deployed teams: each one a heartbeat of the team's entry, from one
GET of its health path on every serving replica (the deploy target's endpoint_health, as `elfctl
health` reads it). Run when an entry's last heartbeat is older than the probe period, by `elfctl
registry` reads, `registry sweep` and `health`: no daemon, yet a killed team goes critical within
one period of being looked at."""

from __future__ import annotations

import datetime as dt

from elfctl.domain.clock import now
from elfctl.errors import ElfError
from elfctl.services.registry import entries as reg


def due(store, period_s: float, at: dt.datetime | None = None, force: bool = False) -> list:
    """The team entries deploy registered whose last heartbeat is older than `period_s`."""
    at = at or now()
    return [e for e in reg.find(store, kind="team", at=at) if e.source == "deploy" and
            (force or (at - dt.datetime.fromisoformat(e.heartbeat_at)).total_seconds() >= period_s)]


def probe_team(target, entry) -> tuple[str, str]:
    """(pass|warn|fail, note) of one probe of a deployed team's replicas."""
    path = entry.metadata.get("health_path", "/health")
    timeout = float(entry.metadata.get("health_timeout_s", 2.0))
    st = target.status(entry.name)
    if st["status"] == "fail":
        return "fail", f"probe: {st['reason'] or 'not serving'}"
    answers = target.endpoint_health(entry.name, path, timeout=timeout, endpoints=st.get("endpoints"))
    if answers is None:  # a cluster: its readiness probes already decided st["status"]
        return st["status"], f"probe: {st['ready']}/{st['desired']} ready"
    if not answers:
        return "fail", "probe: nothing serving"
    bad = [f"{n}: {why}" for n, outcome, why in answers if outcome == "fail"]
    late = [f"{n}: {why}" for n, outcome, why in answers if outcome == "warn"]
    if bad:
        return "fail", f"probe: GET {path} failing on " + "; ".join(bad)
    if late:
        return "warn", "probe: " + "; ".join(late)
    return "pass", f"probe: GET {path} passing on {len(answers)} replica(s)"


def probe_due(store, target, period_s: float, actor: str, force: bool = False, warn=None) -> list[tuple[str, str, str]]:
    """Probe each team that is due and record the result as its heartbeat. A target that cannot be
    reached probes nothing (a warning): the TTL then says what nobody vouched for."""
    done = []
    teams = due(store, period_s, force=force)
    for e in teams:
        try:
            outcome, note = probe_team(target(), e)
        except ElfError as exc:
            if warn:
                warn(f"registry: team {e.name} not probed: {exc.message}")
            break
        reg.heartbeat(store, e.name, outcome, note, actor=actor)
        done.append((e.name, outcome, note))
    return done
