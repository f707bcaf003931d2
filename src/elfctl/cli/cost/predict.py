"""`elfctl cost predict`: spend forecast per team (P10/P50/P90) and budget exhaustion dates."""

from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.common import JsonOpt, get_app
from elfctl.cli.cost import app


def render(pred):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from elfctl.services.cost.views import usd

    table = Table(
        title=f"Spend forecast {pred.horizon_start}..{pred.horizon_end} ({pred.horizon})",
        title_justify="left",
    )
    for col in (
        "team",
        "model (backtest error/day, coverage)",
        "P10",
        "P50",
        "P90",
        "today P50 / daily budget",
        "month-end P50 / monthly budget",
        "monthly budget runs out (P10 / P50 / P90)",
    ):
        table.add_column(col)
    for f in pred.teams:
        cov = "-" if f.coverage is None else f"{f.coverage:.0%}"
        mae = "-" if f.backtest_mae_nanousd is None else usd(f.backtest_mae_nanousd)
        ex = f.month.exhausts
        runs_out = (
            "no budget"
            if not f.month.budget_nanousd
            else "will not"
            if not any(ex.values())
            else " / ".join(ex[k] or "will not" for k in ("p10", "p50", "p90"))
        )
        table.add_row(
            f.team,
            f"{f.model} ({mae}, {cov})"
            + ("" if f.reason == "lowest backtest error" else f"\n[dim]{f.reason}[/]"),
            usd(f.horizon_p10_nanousd),
            usd(f.horizon_p50_nanousd),
            usd(f.horizon_p90_nanousd),
            f"{usd(f.today.p50_nanousd)} / {usd(f.today.budget_nanousd)}",
            f"{usd(f.month.p50_nanousd)} / {usd(f.month.budget_nanousd)}",
            runs_out,
        )
    note = Text(
        "P10..P90: 8 in 10 outcomes expected inside, from each model's own backtest errors; coverage is "
        "how often past actuals fell inside (out of sample). Runs-out P10 is the early date.",
        style="dim",
    )
    return Group(table, note)


@app.command("predict")
def predict(
    ctx: typer.Context,
    team: Annotated[str | None, typer.Option("--team", "-t", help="Only this team.")] = None,
    horizon: Annotated[
        str, typer.Option("--horizon", help="7d, 30d or month (to the end of this month).")
    ] = "7d",
    json_mode: JsonOpt = False,
) -> None:
    """Forecast each team's spend with P10/P50/P90, the model chosen by backtest, and when budgets run out."""
    from elfctl.services.cost.predict import predict as run

    app_ = get_app(ctx, json_mode)
    app_.output.result(run(app_.store, team=team, horizon=horizon), render)
