"""`elfctl cost ...`: one module per verb in this package; each adds its command to `app`, and
`commands` imports them all (so no verb imports a module that imports it back)."""

from __future__ import annotations

import typer

app = typer.Typer(help="See and bound LLM spend: budgets, reports, dashboard, forecasts.",
                  no_args_is_help=True)
