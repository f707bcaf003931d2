"""GET /health: the gateway's health as IETF health JSON (draft-inadarei-api-health-check): the
store (fail: the gateway cannot meter, so it answers 503), the providers' circuits and the budgets
of the teams holding live keys (warn: calls fall back, or are refused for that team only)."""

from __future__ import annotations

import logging
import time

from elfctl.domain.health import Check, HealthReport
from elfctl.services.gateway.routes import Request, route

log = logging.getLogger("elfctl.gateway")
_HEALTH = {"content-type": "application/health+json", "cache-control": "no-store"}


def _store(req: Request) -> Check:
    t0 = time.perf_counter()
    try:
        # a one-row read every store serves (Supabase's REST API has no SQL): the round trip is the check
        req.gateway.store.select("gateway_keys", columns="prefix", limit=1)
    except Exception as exc:  # noqa: BLE001 - any store failure is this check's answer
        from elfctl.redact import scrub

        log.warning("gateway health: store: %s", scrub(str(exc)))
        return Check("store", "fail", output="unreachable", hint="the gateway cannot meter calls: "
                     "check the store (`elfctl health`)")
    return Check("store", "pass", output="reachable", latency_ms=(time.perf_counter() - t0) * 1000)


def _budgets(req: Request) -> Check:
    from elfctl.domain import budget as bmod
    from elfctl.services.cost import budgets
    from elfctl.services.gateway import keys

    teams = sorted({k.team for k in keys.listing(req.gateway.store) if keys.live(k)})
    over, soft = [], []
    for team in teams:
        b = req.gateway.policy(team).budget
        if b is None or not b.limited:
            continue
        level = bmod.level(b, budgets.states(req.gateway.store, b))
        (over if level == "hard" else soft if level == "soft" else []).append(team)
    if over or soft:  # counts only: /health is public, and says nothing of which teams exist
        return Check("budgets", "warn", len(over), "teams_blocked",
                     output=f"{len(over)} team(s) at the limit, {len(soft)} past the soft limit",
                     hint="`elfctl cost budget` shows them; those teams' calls get 429 budget_exceeded")
    return Check("budgets", "pass", 0, "teams_blocked", output=f"{len(teams)} team(s) with live keys")


@route("GET", "/health", public=True)
def health(req: Request):
    from elfctl.services.llm.health import llm_probe

    checks = [_store(req)]
    if checks[0].status != "fail":
        for probe in (lambda: llm_probe(lambda: req.gateway.store)(), lambda: _budgets(req)):
            try:
                checks.append(probe())
            except Exception as exc:  # noqa: BLE001 - a failing check is reported (in the log), not raised
                from elfctl.redact import scrub

                log.warning("gateway health: %s", scrub(str(exc)))
                checks.append(Check("gateway", "warn", output="a check failed: see the gateway's log"))
    report = HealthReport(checks)
    return (503 if report.status == "fail" else 200), _HEALTH, report.to_data()
