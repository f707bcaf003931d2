"""The health checks of the Docker target: the gate before the switch (probe each new replica over
HTTP, each period, until all are ready, one fails, or the time is up) and the verification window
after it (the same probes, the users' path through the team's proxy, and the engine's record of
each replica at every tick). Answers are read by domain.health_gate."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from elfctl.adapters.docker_proxy import network_address
from elfctl.domain.health_gate import ReplicaGate, classify

STATE_TICK_S = 0.2  # the window reads each replica's state this often (one `docker inspect`, ~3 ms)


def probe(address: str, port: int, path: str, timeout: float) -> tuple[str, str, bool]:
    """(outcome, reason, refused): refused means nothing listens yet."""
    try:
        with urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=timeout) as resp:
            outcome, reason = classify(resp.status, resp.read(65536))
            return outcome, reason, False
    except urllib.error.HTTPError as exc:
        outcome, reason = classify(exc.code, exc.read(65536) if exc.fp else b"")
        return outcome, reason, False
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        refused = isinstance(reason, ConnectionRefusedError) or "refused" in str(reason).lower()
        return "fail", f"no answer ({reason})", refused


def ended(name: str, info: dict | None, restarts_before: int | None = None) -> str | None:
    """Why a replica can no longer pass (gone, exited, OOM-killed, restarting or restarted since
    `restarts_before`; restarts are not counted when None); None while it runs."""
    if info is None:
        return f"{name}: container is gone"
    state = info.get("State") or {}
    restarts = 0 if restarts_before is None else info.get("RestartCount", 0) - restarts_before
    counting = restarts_before is not None
    if state.get("Running") and not (counting and state.get("Restarting")) and not restarts:
        return None
    if state.get("OOMKilled"):
        why = "was killed for running out of memory (OOMKilled)"
    elif state.get("Running") and not state.get("Restarting"):
        why = "restarted"  # running again after an exit: the exit is what counts
    else:
        why = f"exited with code {state.get('ExitCode')}"
    return f"{name}: container {why}" + (f" (restarted {restarts} times)" if restarts else "")


def gate(engine, network: str, spec, names: list[str], budget_s: float) -> tuple[bool, str, list[str]]:
    """Before the switch: probe every replica each period until all are ready, one fails, or the
    budget ends. Returns (ok, reason, warnings)."""
    h = spec.health
    gates = {n: ReplicaGate(h.success_threshold, h.failure_threshold) for n in names}
    addresses = {n: network_address(engine.inspect(n), network) for n in names}
    deadline = time.monotonic() + budget_s
    while True:
        started = time.monotonic()
        for name, replica in gates.items():
            addresses[name] = addresses[name] or network_address(engine.inspect(name), network)
            if addresses[name] is None:  # no address yet: only a container that ended stops the gate
                if why := ended(name, engine.inspect(name)):
                    return False, why, []
                continue
            outcome, reason, refused = probe(addresses[name], spec.port, h.path, h.timeout_s)
            replica.record(outcome, reason, refused)
            if outcome == "fail" and (why := ended(name, engine.inspect(name) or {"State": {}}, 0)):
                return False, why, []
            if replica.failed:
                return False, f"{name}: {replica.why_failed(h.path)}", []
        warnings = [w for g in gates.values() for w in g.warnings]
        if all(g.ready for g in gates.values()):
            return True, f"{len(names)}/{len(names)} replicas passed {h.success_threshold} health checks", warnings
        if time.monotonic() >= deadline:
            slow = [f"{n}: {g.last or 'no answer'}" for n, g in gates.items() if not g.ready]
            return False, f"not healthy within {budget_s:g}s ({'; '.join(slow)})", warnings
        time.sleep(max(0.0, min(h.period_s - (time.monotonic() - started), deadline - time.monotonic())))


@dataclass
class Watched:
    ok: bool
    reason: str
    seconds: float  # how long the window ran (until the failure, or whole)
    warnings: list[str] = field(default_factory=list)


def first_ended(engine, names: list[str], restarts_before: dict[str, int]) -> str | None:
    """The first replica that exited, was OOM-killed or restarted since `restarts_before`."""
    for n in names:
        if why := ended(n, engine.inspect(n), restarts_before.get(n, 0)):
            return why
    return None


def window(engine, network: str, spec, names: list[str], users: tuple[str, int] | None,
           window_s: float) -> Watched:
    """After the switch: for `window_s`, read every replica's state from the engine each tick (an
    exit, an OOM kill or a restart fails at once: the restart policy is still off, so a crash stays
    visible), and each health period probe every replica and the users' path (`users`: the team
    proxy's address and port, where users' requests go). A replica that answered before and now
    refuses connections has stopped serving: it fails at once; other failed probes after
    `failure_threshold` in a row."""
    h = spec.health
    t0 = time.monotonic()
    infos = {n: engine.inspect(n) for n in names}
    restarts = {n: (i or {}).get("RestartCount", 0) for n, i in infos.items()}
    addresses = {n: network_address(i, network) for n, i in infos.items()}
    # They all passed the gate: answered, so a refusal now is a server that stopped.
    gates = {n: ReplicaGate(h.success_threshold, h.failure_threshold, answered=True, stop_on_refused=True)
             for n in names}
    path_gate = ReplicaGate(h.success_threshold, h.failure_threshold, answered=True)
    end, next_probe = t0 + window_s, t0 + h.period_s  # the gate has just probed them all

    def failed(reason: str) -> Watched:
        return Watched(False, reason, round(time.monotonic() - t0, 3), _warnings(gates, path_gate))

    while True:
        if why := first_ended(engine, names, restarts):
            return failed(why)
        now = time.monotonic()
        if now >= end:
            return Watched(True, f"verification window {window_s:g}s passed", round(now - t0, 3),
                           _warnings(gates, path_gate))
        if now >= next_probe:
            next_probe = now + h.period_s
            for name, replica in gates.items():
                if addresses[name] is None:
                    continue
                outcome, reason, refused = probe(addresses[name], spec.port, h.path, h.timeout_s)
                replica.record(outcome, reason, refused)
                if replica.failed:
                    if why := first_ended(engine, [name], restarts):  # say why it stopped, if it did
                        return failed(why)
                    return failed(f"{name}: {replica.why_failed(h.path)}")
            if users is not None:
                outcome, reason, _refused = probe(users[0], users[1], h.path, h.timeout_s)
                path_gate.record(outcome, reason)
                if path_gate.failed:
                    return failed(f"users' path (the team proxy): {path_gate.why_failed(h.path)}")
        time.sleep(max(0.0, min(STATE_TICK_S, end - time.monotonic(), next_probe - time.monotonic())))


def _warnings(gates: dict[str, ReplicaGate], path_gate: ReplicaGate) -> list[str]:
    found = [w for g in (*gates.values(), path_gate) for w in g.warnings]
    return list(dict.fromkeys(found))
