"""api_quota: each team's LLM budget used (the fullest of its windows), and each provider's
remaining rate limit. The budgets are issue 4's (services/cost/budgets.py); this only reads them.
Provider rate limits are what each model's last answer through the gateway stated in its
`x-ratelimit-*` headers (table provider_limits, kept by services/gateway/quota.py): the fuller of the
requests and tokens windows, a window whose reset moment has passed counting as refilled. A provider
the teams name that no gateway call has answered yet reads "unknown"."""

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
    stated = _provider_limits(store, tables, limits)
    out += stated
    for name in providers:
        if not any(r.subject.startswith(f"provider:{name}/") for r in stated):
            out.append(Reading("api_quota", f"provider:{name}", "unknown",
                               detail="no rate limit stated yet (kept from the x-ratelimit-* headers of "
                                      "calls through the gateway)"))
    return out or [Reading("api_quota", "-", "not_configured", detail="no team has a budget, no team names a model")]


def _provider_limits(store, tables, limits: tuple[float, float]) -> list[Reading]:
    from elfctl.domain.clock import now
    from elfctl.services.resources import ratelimits

    if "provider_limits" not in tables:
        return []
    at = now()
    return [reading("api_quota", f"provider:{p}/{m}", lim.used_percent(at), limits, lim.describe(at))
            for (p, m), lim in sorted(ratelimits.latest(store).items())]
