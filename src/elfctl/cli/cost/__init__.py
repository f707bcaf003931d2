"""`elfctl cost ...`: one module per verb in this package; each adds its command to `app`."""

from __future__ import annotations

import typer

app = typer.Typer(help="See and bound LLM spend: budgets, reports, dashboard, forecasts.",
                  no_args_is_help=True)

# Verb modules register their commands on import (keep these imports light: typer only).

from elfctl.cli.cost import (  # noqa: E402,F401
    budget,
    check,
    dashboard,
    import_cmd,
    optimize,
    predict,
    reconcile,
    report,
)
