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
    """Import usage recorded elsewhere; re-importing counts nothing twice."""
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
