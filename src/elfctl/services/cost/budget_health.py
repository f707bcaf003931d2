"""`elfctl health` component `budgets`: a team past its soft limit is a `warn`, at or past its
limit a `fail`. Windows, counters and the soft/hard rule are issue 4's (services/cost/budgets.py,
domain/budget.py); this only reads them. Teams: every `cost budget set` row plus every team.yaml
with llm.budget (the store row wins, as for calls)."""

from __future__ import annotations

from collections.abc import Callable

from elfctl.domain import budget as bmod
from elfctl.domain.health import Check
from elfctl.domain.pricing import nano_to_usd
from elfctl.errors import ElfError
from elfctl.services.cost import budgets


def spec_budgets(teams_dir) -> dict:
    """team -> team.yaml llm.budget for the teams that set one (invalid files are left to
    `team validate` and the llm:config component)."""
    from elfctl.adapters import team_files as team_mod

    out = {}
    for path in team_mod.discover(teams_dir):
        try:
            spec = team_mod.load(path)
        except ElfError:
            continue
        if spec.llm.budget is not None:
            out[spec.name] = spec.llm.budget
    return out


def _usd(nano: int) -> str:
    return f"${nano_to_usd(nano):.2f}"


def budget_probe(open_store: Callable[[], object], teams_dir):
    def probe() -> Check:
        store = open_store()
        if "budgets" not in store.tables():
            return Check("budgets", "warn", output="no cost tables yet", hint="run `elfctl db migrate`")
        specs = spec_budgets(teams_dir)
        teams = sorted({r["team"] for r in store.select("budgets", columns="team")} | set(specs))
        checked, soft, hard = 0, [], []
        for team in teams:
            b = budgets.get(store, team, specs.get(team))
            if b is None or not b.limited:
                continue
            checked += 1
            states = budgets.states(store, b)
            level = bmod.level(b, states)
            if level == "ok":
                continue
            worst = max((s for s in states if s.limit is not None), key=lambda s: s.ratio())
            line = (f"{team}: {_usd(worst.used)} of {_usd(worst.limit)} {bmod.WINDOW_ADJ[worst.window]} "
                    f"({worst.ratio():.0%}, resets {worst.resets_at:%Y-%m-%d %H:%M} UTC)")
            (hard if level == "hard" else soft).append(line)
        if hard:
            return Check("budgets", "fail", len(hard), "teams_over_limit", output="; ".join(hard + soft),
                         hint="calls are refused or downgraded per the budget's action: raise it with "
                              "`elfctl cost budget set TEAM`, or wait for the reset")
        if soft:
            return Check("budgets", "warn", len(soft), "teams_past_soft_limit", output="; ".join(soft),
                         hint="`elfctl cost report --team TEAM` shows where it goes")
        return Check("budgets", "pass", checked, "teams_with_budget",
                     output=f"{checked} team budget(s), all under their soft limit" if checked
                     else "no team has a budget")

    return probe
