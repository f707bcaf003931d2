"""The `cost` and `llm` commands' use cases, one function per command, taking the run's App.

Each one first replays the usage spool (calls a killed process answered but never recorded), so
what a command reports includes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elfctl.adapters import team_files as team_mod
from elfctl.domain.budget import Budget
from elfctl.domain.names import check_team_name
from elfctl.domain.pricing import usd_to_nano
from elfctl.errors import InputError, StoreNotMigrated
from elfctl.services.cost import budgets, reconcile, usage_import
from elfctl.services.cost import report as cost_report
from elfctl.services.llm import app as llm_service


def _ready(app) -> Any:
    store = app.store
    if "api_usage" not in store.tables():
        raise StoreNotMigrated(
            f"the store {store.display_url} has no cost tables yet",
            hint="run `elfctl db migrate` (or `elfctl infra up`) first",
        )
    llm_service.spool(app.config).replay(store)
    return store


def _spec_budget(app, team: str):
    check_team_name(team)
    path = llm_service.teams_dir(app.config) / team / "team.yaml"
    return team_mod.load(path).llm.budget if path.is_file() else None


def _usd(value: str | None, flag: str) -> int | None:
    if value is None:
        return None
    try:
        n = usd_to_nano(value)
    except Exception:  # noqa: BLE001
        raise InputError(
            f"{flag} {value!r} is not an amount in USD", hint=f"e.g. {flag} 5 or {flag} 0.25"
        ) from None
    if n < 0:
        raise InputError(f"{flag} must not be negative", hint=f"e.g. {flag} 5")
    return n


def budget_set(
    app,
    team: str,
    daily: str | None,
    monthly: str | None,
    soft: float,
    action: str,
    soft_action: str,
    timezone: str,
) -> dict:
    _spec_budget(app, team)  # validates the name (and team.yaml when present)
    if daily is None and monthly is None:
        raise InputError(
            "give --daily and/or --monthly", hint=f"e.g. elfctl cost budget set {team} --daily 5"
        )
    store = _ready(app)
    budgets.set_budget(
        store,
        Budget(team, _usd(daily, "--daily"), _usd(monthly, "--monthly"), soft, soft_action, action, timezone),
    )
    return budgets.show(store, team)


def budget_list(app) -> list[dict]:
    store = _ready(app)
    return [budgets.show(store, r["team"]) for r in store.select("budgets", columns="team", order="team")]


def budget_show(app, team: str) -> dict:
    spec = _spec_budget(app, team)
    return budgets.show(_ready(app), team, spec)


def report(app, team, since, until, by) -> cost_report.Report:
    return cost_report.report(_ready(app), team, since, until, by)


def check(app, team: str, max_usd: str | None) -> cost_report.CheckResult:
    spec = _spec_budget(app, team)
    return cost_report.check(_ready(app), team, spec, max_usd)


def reconcile_all(app, fix: bool) -> reconcile.ReconcileResult:
    return reconcile.reconcile(_ready(app), fix)


def reprice(app, since: str, dry_run: bool) -> reconcile.RepriceResult:
    return reconcile.reprice(_ready(app), app.prices, since, dry_run)


def import_usage(app, path: Path, fmt: str, strict: bool) -> usage_import.ImportResult:
    store = _ready(app)
    return usage_import.import_file(
        store, path, fmt, strict, progress=lambda n: app.output.info(f"{n:,} rows read ...")
    )


def llm_test(app, team: str | None, model: str | None, api_base: str | None) -> dict:
    _ready(app)
    return llm_service.llm_test(app.config, app.llm_caller, team, model, api_base)
