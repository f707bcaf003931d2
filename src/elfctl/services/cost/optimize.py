"""`cost optimize`: recommendations with the money they would save, from the team's real usage.

Reads the rollup for rates and budgets, and `api_usage` only through bounded, indexed queries:
every query names one team and a `ts` range of WINDOW_DAYS, so it walks the `(team, ts)` index
(api_usage_team_ts) and never scans the table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from elfctl.ports import runs_functions
from elfctl.services.cost.views import require_schema, usd

WINDOW_DAYS = 30
SHORT_ANSWER = 1024  # completion tokens: short answers are where small models usually suffice
MIN_CALLS = 20  # below this, rates are noise
ERROR_RATE = 0.05
FALLBACK_RATE = 0.10
BUDGET_FAR_ABOVE = 3.0  # budget more than 3x the month's spend: idle headroom


@dataclass
class Recommendation:
    kind: str  # cheaper_model | cache_repeats | budget_high | budget_low | no_budget | unreliable_model
    team: str | None
    title: str
    action: str
    savings_nanousd: int  # over the evidence window (0: a risk, not a saving)
    monthly_savings_nanousd: int
    evidence: dict = field(default_factory=dict)


@dataclass
class Recommendations:
    generated_at: str
    since: str
    until: str
    team: str | None
    total_monthly_savings_nanousd: int
    items: list[Recommendation]


def optimize(
    store, catalog: dict, team: str | None = None, now: dt.datetime | None = None
) -> Recommendations:
    """`catalog`: model -> ModelFacts (adapters.model_catalog.load())."""
    require_schema(store)
    now = now or dt.datetime.now(dt.UTC)
    since_day = now.date() - dt.timedelta(days=WINDOW_DAYS)
    since_ts, until_ts = since_day.isoformat() + "T00:00:00", now.isoformat()
    summary, budget_rows = _read(store, since_day, now.date(), team)
    summary = [{k: (v if k in ("team", "model") else int(v or 0)) for k, v in r.items()} for r in summary]
    scale = 30 / WINDOW_DAYS
    items: list[Recommendation] = []
    in_use = {r["model"] for r in summary}
    for team_name in sorted({r["team"] for r in summary}):
        models = [r for r in summary if r["team"] == team_name]
        for r in models:
            rec = _cheaper_model(store, catalog, in_use, team_name, r["model"], since_ts, until_ts, scale)
            if rec:
                items.append(rec)
        rec = _repeats(store, team_name, since_ts, until_ts, scale)
        if rec:
            items.append(rec)
    items += _budgets(budget_rows, summary)
    items += _reliability(summary)
    items.sort(key=lambda r: (-r.monthly_savings_nanousd, r.kind, r.team or ""))
    return Recommendations(
        now.isoformat(timespec="seconds"),
        since_day.isoformat(),
        now.date().isoformat(),
        team,
        sum(r.monthly_savings_nanousd for r in items),
        items,
    )


def _read(store, since: dt.date, until: dt.date, team: str | None) -> tuple[list[dict], list[dict]]:
    """Calls, errors, fallbacks and cost per (team, model) from the rollup, and the budgets: one call
    of elfctl_optimize where the store runs database functions (migration 0120), else SQL."""
    if runs_functions(store):
        got = store.call("elfctl_optimize", {"p_since": since.isoformat(), "p_until": until.isoformat(),
                                             "p_team": team or None})
        return got["summary"], got["budgets"]
    summary = store.query(
        "SELECT team, model, SUM(calls) AS calls, SUM(errors) AS errors, SUM(fallbacks) AS fallbacks, "
        "SUM(cost_nanousd) AS cost FROM daily_cost_summary WHERE day >= ? AND day <= ?"
        + (" AND team = ?" if team else "")
        + " GROUP BY team, model",
        [since.isoformat(), until.isoformat()] + ([team] if team else []),
    )
    budgets = store.query(
        "SELECT team, daily_nanousd, monthly_nanousd FROM budgets" + (" WHERE team = ?" if team else ""),
        [team] if team else [],
    )
    return summary, budgets


def _cheaper_model(store, catalog, in_use, team, model, since_ts, until_ts, scale) -> Recommendation | None:
    current = catalog.get(model)
    if current is None:
        return None
    cheaper = [
        catalog[m]
        for m in sorted(in_use)
        if m in catalog
        and m != model
        and catalog[m].provider == current.provider
        and catalog[m].input_nano < current.input_nano
        and catalog[m].output_nano < current.output_nano
    ]
    best = None
    for cand in cheaper:
        max_in = cand.max_input_tokens or 10**12
        max_out = min(cand.max_output_tokens or 10**12, SHORT_ANSWER)
        row = _fit(store, team, since_ts, until_ts, model, max_in, max_out)
        n = int(row["n"] or 0)
        if not n:
            continue
        cost, pt, ct, cached = (int(row[k] or 0) for k in ("cost", "pt", "ct", "cached"))
        new_cost = cand.cost(pt, ct, cached)
        saving = cost - new_cost
        if saving > 0 and (best is None or saving > best[0]):
            best = (saving, cand, n, cost, new_cost, pt, ct)
    if best is None:
        return None
    saving, cand, n, cost, new_cost, pt, ct = best
    max_out = min(cand.max_output_tokens or SHORT_ANSWER, SHORT_ANSWER)
    return Recommendation(
        "cheaper_model",
        team,
        f"{team}: move short {model} calls to {cand.model}",
        f"route {model} calls with answers up to {SHORT_ANSWER} tokens to {cand.model} ({cand.provider}), "
        "after checking their quality on a sample",
        saving,
        int(saving * scale),
        {
            "calls": n,
            "model": model,
            "cheaper_model": cand.model,
            "cost_nanousd": cost,
            "cost_on_cheaper_nanousd": new_cost,
            "prompt_tokens": pt,
            "completion_tokens": ct,
            "fits": f"prompt <= {cand.max_input_tokens} and answer <= {max_out} tokens",
            "text": f"{n} calls cost {usd(cost)}; on {cand.model} they would cost {usd(new_cost)}",
        },
    )


def _fit(store, team, since_ts, until_ts, model, max_in, max_out) -> dict:
    """One team's successful calls to `model` that fit the limits: count, cost and tokens
    (elfctl_usage_fit where the store runs database functions)."""
    if runs_functions(store):
        return store.call("elfctl_usage_fit", {"p_team": team, "p_since_ts": since_ts, "p_until_ts": until_ts,
                                               "p_model": model, "p_max_in": max_in, "p_max_out": max_out})
    return store.query(
        "SELECT COUNT(*) AS n, SUM(cost_nanousd) AS cost, SUM(prompt_tokens) AS pt, "
        "SUM(completion_tokens) AS ct, SUM(cached_tokens) AS cached FROM api_usage "
        "WHERE team = ? AND ts >= ? AND ts <= ? AND model = ? AND outcome = 'ok' "
        "AND prompt_tokens <= ? AND completion_tokens <= ?",
        [team, since_ts, until_ts, model, max_in, max_out],
    )[0]


def _repeats(store, team, since_ts, until_ts, scale) -> Recommendation | None:
    if runs_functions(store):
        rows = store.call("elfctl_repeated_prompts", {"p_team": team, "p_since_ts": since_ts,
                                                      "p_until_ts": until_ts})
    else:
        rows = store.query(
            "SELECT prompt_hash, COUNT(*) AS n, SUM(cost_nanousd) AS cost FROM api_usage "
            "WHERE team = ? AND ts >= ? AND ts <= ? AND prompt_hash IS NOT NULL AND outcome = 'ok' "
            "GROUP BY prompt_hash HAVING COUNT(*) > 1",
            [team, since_ts, until_ts],
        )
    if not rows:
        return None
    repeats = sum(int(r["n"]) - 1 for r in rows)
    # An exact-match response cache answers every repeat after the first for free.
    saving = sum(int(r["cost"]) * (int(r["n"]) - 1) // int(r["n"]) for r in rows)
    if saving <= 0:
        return None
    return Recommendation(
        "cache_repeats",
        team,
        f"{team}: cache repeated identical prompts",
        "put an exact-match response cache (e.g. litellm's cache) in front of these calls",
        saving,
        int(saving * scale),
        {
            "distinct_prompts": len(rows),
            "repeated_calls": repeats,
            "text": f"{len(rows)} prompts were sent {repeats} extra times, costing {usd(saving)}",
        },
    )


def _budgets(budget_rows, summary) -> list[Recommendation]:
    budgets = {b["team"]: b for b in budget_rows}
    spend: dict[str, int] = {}
    for r in summary:
        spend[r["team"]] = spend.get(r["team"], 0) + r["cost"]
    out = []
    for name in sorted(set(spend) | set(budgets)):
        b = budgets.get(name)
        monthly = int(b["monthly_nanousd"]) if b and b["monthly_nanousd"] is not None else None
        advice = _budget_advice(name, spend.get(name, 0), monthly)  # spend: the last 30 days
        if advice:
            out.append(advice)
    return out


def _budget_advice(name: str, month: int, monthly: int | None) -> Recommendation | None:
    """A budget missing, below the last 30 days' spend, or far above it."""
    ev = {"spend_30d_nanousd": month, "monthly_budget_nanousd": monthly}
    if monthly is None:
        if month:
            return Recommendation(
                "no_budget",
                name,
                f"{name}: no monthly budget",
                f"set one, e.g. `elfctl cost budget set {name} --monthly "
                f"{month * 1.5 / 1e9:.0f}` (1.5x the last 30 days)",
                0,
                0,
                {**ev, "text": f"spent {usd(month)} in 30 days with no monthly limit"},
            )
    elif month > monthly:
        return Recommendation(
            "budget_low",
            name,
            f"{name}: spend is above the monthly budget",
            "raise the budget or cut usage: calls are being downgraded or blocked",
            0,
            0,
            {**ev, "text": f"spent {usd(month)} in 30 days against {usd(monthly)}"},
        )
    elif month and monthly > BUDGET_FAR_ABOVE * month:
        return Recommendation(
            "budget_high",
            name,
            f"{name}: budget far above spend",
            f"lower the monthly budget to about {usd(month * 1.5, 0)} so a runaway loop is caught early",
            0,
            0,
            {**ev, "text": f"spent {usd(month)} in 30 days; budget {usd(monthly)} ({monthly / month:.1f}x)"},
        )
    return None


def _reliability(summary) -> list[Recommendation]:
    per_model: dict[str, dict] = {}
    for r in summary:
        m = per_model.setdefault(r["model"], {"calls": 0, "errors": 0, "fallbacks": 0, "teams": set()})
        for k in ("calls", "errors", "fallbacks"):
            m[k] += r[k]
        m["teams"].add(r["team"])
    out = []
    for model, m in sorted(per_model.items()):
        if m["calls"] < MIN_CALLS:
            continue
        err, fb = m["errors"] / m["calls"], m["fallbacks"] / m["calls"]
        if err >= ERROR_RATE or fb >= FALLBACK_RATE:
            out.append(
                Recommendation(
                    "unreliable_model",
                    None,
                    f"{model}: {err:.1%} errors, {fb:.1%} fallbacks",
                    "check the provider's limits and status; make a steadier model the preferred one",
                    0,
                    0,
                    {
                        "model": model,
                        "calls": m["calls"],
                        "errors": m["errors"],
                        "fallbacks": m["fallbacks"],
                        "error_rate": round(err, 4),
                        "fallback_rate": round(fb, 4),
                        "teams": sorted(m["teams"]),
                        "text": f"{m['errors']} errors and {m['fallbacks']} fallbacks in {m['calls']} calls",
                    },
                )
            )
    return out
