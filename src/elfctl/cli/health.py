from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.bounds import bounded
from elfctl.cli.common import JsonOpt, finish, get_app

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
    component: Annotated[list[str] | None, typer.Option("--component", "-c", help="Only this component.")] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Per-check timeout in seconds.", callback=bounded(0.1, 3600))
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    deep: Annotated[bool, typer.Option("--deep", help="Also make one cheap real call per LLM provider.")] = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh in place until Ctrl-C.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between refreshes with --watch.", callback=bounded(0.1, 86400))
    ] = 2.0,
    json_mode: JsonOpt = False,
) -> None:
    """Check every component concurrently; exit 0 when all pass, 1 when any fails (warnings exit 0
    unless --strict)."""
    from elfctl.services.platform.app import health_report

    app = get_app(ctx, json_mode)

    def produce():
        return health_report(app, components=component, timeout_s=timeout, deep=deep)

    if watch:
        app.output.watch(produce, render, interval)
        raise typer.Exit(0)
    report = produce()
    finish(app, report, render, failing(report, strict))


def failing(report, strict: bool = False):
    """The error a failing report exits with (None when it passes), naming the failing components."""
    if not report.exit_code(strict):
        return None
    from elfctl.errors import OperationFailed

    bad = ("fail", "warn") if strict else ("fail",)
    names = ", ".join(dict.fromkeys(c.component for c in report.checks if c.status in bad))
    return OperationFailed(f"health: {names} {'not passing' if strict else 'failing'}",
                           hint="see each component's details and hint")
