"""`elfctl cost check`: a CI gate on a team's budget."""

from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.bounds import usd
from elfctl.cli.common import JsonOpt, get_app
from elfctl.cli.cost import app


@app.command("check")
def check(
    ctx: typer.Context,
    team: Annotated[str, typer.Option("--team", help="The team to check.")],
    max_usd: Annotated[str | None, typer.Option("--max-usd", help="Also fail past N USD this month.", callback=usd())] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Exit 0 under budget (a distinct message past the soft limit), 1 over it."""
    from elfctl.services.cost import app as cost_ops

    app_ = get_app(ctx, json_mode)
    result = cost_ops.check(app_, team, max_usd)
    if result.status == "soft":
        app_.output.warn(result.message)
    app_.output.result(result, lambda r: r.message)
