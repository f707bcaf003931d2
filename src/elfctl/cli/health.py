from __future__ import annotations

from typing import Annotated, Optional

import typer

from elfctl.cli.common import JsonOpt, get_app

STYLE = {"pass": "green", "warn": "yellow", "fail": "red"}


def render(report):
    from rich.table import Table

    table = Table(title=f"elfctl health: {report.status}")
    for col in ("component", "status", "measured", "details"):
        table.add_column(col)
    for c in report.checks:
        measured = "" if c.observed_value is None else f"{c.observed_value} {c.observed_unit or ''}".strip()
        detail = c.output + (f"\nhint: {c.hint}" if c.hint and c.status != "pass" else "")
        table.add_row(c.component, f"[{STYLE[c.status]}]{c.status}[/]", measured, detail)
    return table


def health(
    ctx: typer.Context,
    component: Annotated[Optional[list[str]], typer.Option("--component", "-c", help="Only this component.")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", help="Per-check timeout in seconds.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Check every component concurrently; exit 0 when all pass, 1 when any fails."""
    from elfctl.services.platform import health_report

    app = get_app(ctx, json_mode)
    report = health_report(app, components=component, timeout_s=timeout)
    app.output.result(report, render)
    raise typer.Exit(report.exit_code(strict))
