"""`elfctl cost import FILE`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from elfctl.cli.common import JsonOpt, get_app
from elfctl.cli.cost import app


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="Usage file: elfctl JSON, LiteLLM_SpendLogs CSV or /spend/logs JSON.")
    ],
    fmt: Annotated[
        str, typer.Option("--format", help="auto, elfctl, spendlogs-csv or spendlogs-json.")
    ] = "auto",
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail (importing nothing) on the first bad row.")
    ] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Import usage recorded elsewhere; re-importing counts nothing twice.

    A row needs: elfctl format: request_id, ts (ISO-8601), team (a DNS-1123 name), requested_model,
    model; token counts and cost_nanousd are optional whole numbers >= 0. LiteLLM SpendLogs (CSV or
    JSON): request_id, spend (USD), startTime, model, and metadata.user_api_key_team_alias or team_id.

    Every row is read: good rows are imported, each bad one is reported with its line and field
    (exit 0). A file in which no row is good exits 2; --strict imports nothing unless all are good."""
    from elfctl.services.cost import app as cost_ops

    app_ = get_app(ctx, json_mode)
    res = cost_ops.import_usage(app_, file, fmt, strict)
    for b in res.bad[:20]:
        app_.output.warn(f"{file}: skipped {b['error']}")

    def human(r):
        return (
            f"{r.file} ({r.format}): {r.read:,} rows read, {r.imported:,} imported, {r.duplicates:,} already "
            f"there, {r.bad_count:,} skipped"
        )

    app_.output.result(res, human)
