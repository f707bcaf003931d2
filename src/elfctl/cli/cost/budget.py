"""`elfctl cost budget set/list/show`."""

from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.bounds import bounded, usd
from elfctl.cli.common import JsonOpt, get_app
from elfctl.cli.cost import app as cost_app

app = typer.Typer(
    help="Daily and monthly budgets per team (they win over team.yaml's llm.budget).", no_args_is_help=True
)
cost_app.add_typer(app, name="budget")


def _usd(n):
    from elfctl.domain.budget import fmt_usd

    return fmt_usd(n)


def _table(items):
    from rich.table import Table

    t = Table()
    for col in ("team", "window", "limit", "spent", "reserved", "remaining", "resets at", "level", "source"):
        t.add_column(col)
    for it in items:
        b = it["budget"]
        for w in it["windows"]:
            t.add_row(
                it["team"],
                w["window"],
                _usd(w["limit_nanousd"]),
                _usd(w["spent_nanousd"]),
                _usd(w["reserved_nanousd"]),
                _usd(w["remaining_nanousd"]),
                w["resets_at"][:16],
                it.get("level", ""),
                b.source if b else "",
            )
        if not it["windows"]:
            t.add_row(it["team"], "-", "no budget", "", "", "", "", "", "")
    return t


@app.command("set")
def set_(
    ctx: typer.Context,
    team: Annotated[str, typer.Argument(help="Team name.")],
    daily: Annotated[str | None, typer.Option("--daily", help="Daily limit in USD.", callback=usd())] = None,
    monthly: Annotated[str | None, typer.Option("--monthly", help="Monthly limit in USD.", callback=usd())] = None,
    soft: Annotated[float, typer.Option("--soft", help="Soft limit as a fraction of the limit.", callback=bounded(0.01, 1))] = 0.8,
    action: Annotated[
        str, typer.Option("--action", help="At the limit: warn, downgrade or block.")
    ] = "block",
    soft_action: Annotated[
        str, typer.Option("--soft-action", help="At the soft limit: warn, downgrade, block.")
    ] = "warn",
    timezone: Annotated[str, typer.Option("--timezone", help="Time zone of the day/month windows.")] = "UTC",
    json_mode: JsonOpt = False,
) -> None:
    """Set a team's budget (stored; wins over team.yaml's llm.budget)."""
    from elfctl.services.cost import app as cost_ops

    app_ = get_app(ctx, json_mode)
    result = cost_ops.budget_set(app_, team, daily, monthly, soft, action, soft_action, timezone)
    app_.output.result(result, lambda r: _table([r]))


@app.command("list")
def list_(ctx: typer.Context, json_mode: JsonOpt = False) -> None:
    """Every stored budget with its spend, reservations and reset times."""
    from elfctl.services.cost import app as cost_ops

    app_ = get_app(ctx, json_mode)
    result = cost_ops.budget_list(app_)
    app_.output.result(
        result, lambda r: _table(r) if r else "no budgets set (elfctl cost budget set TEAM --daily USD)"
    )


@app.command("show")
def show(
    ctx: typer.Context, team: Annotated[str, typer.Argument(help="Team name.")], json_mode: JsonOpt = False
) -> None:
    """A team's budget: spend, reserved, remaining, when each window resets."""
    from elfctl.services.cost import app as cost_ops

    app_ = get_app(ctx, json_mode)
    app_.output.result(cost_ops.budget_show(app_, team), lambda r: _table([r]))
