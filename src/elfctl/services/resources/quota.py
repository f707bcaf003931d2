"""api_quota: each team's LLM budget used (the fullest of its windows), and each provider's
remaining rate limit. The budgets are issue 4's (services/cost/budgets.py); this only reads them.
Provider rate limits would come from their last response headers; nothing records those yet, so
each provider the teams name reads "unknown"."""

from __future__ import annotations

from elfctl.domain.pricing import nano_to_usd
from elfctl.errors import ElfError
from elfctl.services.resources.status import Reading, reading


def api_quota(limits: tuple[float, float], open_store, teams_dir, providers: list[str]) -> list[Reading]:
    from elfctl.services.cost import budgets
    from elfctl.services.cost.budget_health import spec_budgets

    out = []
    try:
        store = open_store()
        tables = store.tables()
    except ElfError as exc:  # the database type reports the store itself
        return [Reading("api_quota", "budgets", "unknown", detail=f"budgets not read: {exc.message}")]
    if "budgets" in tables:
        specs = spec_budgets(teams_dir)
        for team in sorted({r["team"] for r in store.query("SELECT team FROM budgets")} | set(specs)):
            b = budgets.get(store, team, specs.get(team))
            if b is None or not b.limited:
                continue
            windows = [s for s in budgets.states(store, b) if s.limit is not None]
            if not windows:
                continue
            w = max(windows, key=lambda s: s.ratio())
            out.append(reading("api_quota", f"team:{team}", w.ratio() * 100, limits,
                               f"${nano_to_usd(w.used):.2f} of ${nano_to_usd(w.limit):.2f} {w.window}", team=team))
    for name in providers:
        out.append(Reading("api_quota", f"provider:{name}", "unknown",
                           detail="remaining rate limit not recorded (no provider response headers kept)"))
    return out or [Reading("api_quota", "-", "not_configured", detail="no team has a budget, no team names a model")]
