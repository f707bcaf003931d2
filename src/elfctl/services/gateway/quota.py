"""The api_quota policy as the gateway applies it: a team whose budget use is critical
(`[resources.api_quota] critical`, default 95% of a window's limit) is served by the next cheaper model
of its chain instead of its first one, while `degrade_service` is among `[fallback.api_quota]
strategies`. Entering and leaving that state is one row each in the actions trail (per gateway
process). A provider's 429 is the Caller's to handle: it waits out `Retry-After` within the model's
time budget, falls back, and the gateway answers 429 with `Retry-After` when every model is limited."""

from __future__ import annotations

import threading
import time

from elfctl.services.actions import trail
from elfctl.services.cost import budgets

TTL_S = 1.0  # budget use is read again after this long, like the team's policy
_seen: dict[str, tuple[float, float | None]] = {}  # team -> (read at, critical use % or None)
_lock = threading.Lock()


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
