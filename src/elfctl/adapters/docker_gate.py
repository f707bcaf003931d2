"""The health gate of the Docker target: probe each new replica over HTTP, each period, until all
are ready, one fails, or the time is up; answers are read by domain.health_gate."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from elfctl.adapters.docker_proxy import network_address
from elfctl.domain.health_gate import ReplicaGate, classify


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


def _ended(name: str, info: dict | None, count_restarts: bool) -> str | None:
    """Why a replica can no longer pass (gone, exited, restarting or restarted); None while it runs."""
    if info is None:
        return f"{name}: container is gone"
    state, restarts = info["State"], info.get("RestartCount", 0) if count_restarts else 0
    if state.get("Running") and not (count_restarts and state.get("Restarting")) and not restarts:
        return None
    return f"{name}: container exited with code {state.get('ExitCode')}" + (
        f" (restarted {restarts} times)" if restarts else "")


def gate(engine, network: str, spec, names: list[str], budget_s: float,
         require_ready: bool) -> tuple[bool, str, list[str]]:
    """Probe every replica each period until all are ready (require_ready) or the budget ends
    (soak). Returns (ok, reason, warnings)."""
    h = spec.health
    gates = {n: ReplicaGate(h.success_threshold, h.failure_threshold) for n in names}
    addresses = {n: network_address(engine.inspect(n), network) for n in names}
    deadline = time.monotonic() + budget_s
    while True:
        started = time.monotonic()
        for name, replica in gates.items():
            addresses[name] = addresses[name] or network_address(engine.inspect(name), network)
            if addresses[name] is None:  # no address yet: only a container that ended stops the gate
                if ended := _ended(name, engine.inspect(name), count_restarts=False):
                    return False, ended, []
                continue
            outcome, reason, refused = probe(addresses[name], spec.port, h.path, h.timeout_s)
            replica.record(outcome, reason, refused)
            if outcome == "fail" and (ended := _ended(name, engine.inspect(name) or {"State": {}}, True)):
                return False, ended, []
            if replica.failed:
                return False, (f"{name}: {h.failure_threshold} consecutive failed health checks on "
                               f"{h.path} (last: {reason})"), []
        warnings = [w for g in gates.values() for w in g.warnings]
        if require_ready and all(g.ready for g in gates.values()):
            return True, f"{len(names)}/{len(names)} replicas passed {h.success_threshold} health checks", warnings
        if time.monotonic() >= deadline:
            if not require_ready:
                return True, f"soak {budget_s:g}s passed", warnings
            slow = [f"{n}: {g.last or 'no answer'}" for n, g in gates.items() if not g.ready]
            return False, f"not healthy within {budget_s:g}s ({'; '.join(slow)})", warnings
        time.sleep(max(0.0, min(h.period_s - (time.monotonic() - started), deadline - time.monotonic())))
