"""`elfctl cost optimize`: recommendations with the money they would save and their evidence."""

from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.common import JsonOpt, get_app
from elfctl.cli.cost import app


def render(recs):
    from rich.table import Table

    from elfctl.services.cost.views import usd

    table = Table(
        title=f"Recommendations from usage {recs.since}..{recs.until}: "
        f"{usd(recs.total_monthly_savings_nanousd)}/month to save",
        title_justify="left",
    )
    for col in ("saves / month", "recommendation", "evidence"):
        table.add_column(col, justify="right" if col.startswith("saves") else "left")
    for r in recs.items:
        table.add_row(
            usd(r.monthly_savings_nanousd) if r.monthly_savings_nanousd else "-",
            f"[bold]{r.title}[/]\n{r.action}",
            str(r.evidence.get("text", "")),
        )
    if not recs.items:
        return "No recommendations: spend, budgets and error rates look fine."
    return table


@app.command("optimize")
def optimize(
    ctx: typer.Context,
    team: Annotated[str | None, typer.Option("--team", "-t", help="Only this team.")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Cheaper models that fit, repeated prompts to cache, budgets out of line, unreliable models."""
    from elfctl.adapters.model_catalog import load
    from elfctl.services.cost.optimize import optimize as run
    from elfctl.services.llm.app import prices_path

    app_ = get_app(ctx, json_mode)
    overrides = prices_path(app_.config)
    catalog = load(overrides=str(overrides) if overrides.exists() else None)  # same prices as the ledger
    app_.output.result(run(app_.store, catalog, team=team), render)
