"""`elfctl cost report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from elfctl.cli.common import JsonOpt, get_app
from elfctl.cli.cost import app


@app.command("report")
def report(
    ctx: typer.Context,
    team: Annotated[str | None, typer.Option("--team", help="Only this team.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="First day (YYYY-MM-DD, UTC).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last day (YYYY-MM-DD, UTC).")] = None,
    by: Annotated[
        str, typer.Option("--by", help="Group by team, model, day, revision or agent (request: every row).")
    ] = "team",
    csv_mode: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Also write an HTML report to FILE.")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Spend per team, model or day from the daily rollup."""
    from elfctl.services.cost import app as cost_ops

    app_ = get_app(ctx, json_mode)
    rep = cost_ops.report(app_, team, since, until, by)
    if html is not None:
        try:
            from elfctl.services.cost.html import write_html
        except ImportError:
            from elfctl.errors import OperationFailed

            raise OperationFailed("--html: this elfctl has no HTML report writer (elfctl.services.cost.html)",
                                  hint="use --json or --csv, or update elfctl") from None

        write_html(app_.store, html, team=team, since=rep.since, until=rep.until)
        app_.output.info(f"wrote {html}")
    if csv_mode and not json_mode:
        import csv
        import sys

        from elfctl.output import to_data

        rows = [to_data(r) for r in rep.rows]
        if rows:
            w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        return
    app_.output.result(rep, _human)


def _human(rep):
    from rich.table import Table

    if rep.by == "request":
        return f"{len(rep.rows)} usage rows (use --json or --csv to export them)"
    t = Table(title=f"LLM spend by {rep.by}" + (f" for {rep.team}" if rep.team else ""))
    for col in (
        rep.by,
        "calls",
        "errors",
        "fallbacks",
        "unpriced",
        "prompt tok",
        "completion tok",
        "cost USD",
    ):
        t.add_column(col, justify="left" if col == rep.by else "right")
    for r in [*rep.rows, rep.total]:
        t.add_row(
            r.key,
            str(r.calls),
            str(r.errors),
            str(r.fallbacks),
            str(r.unpriced),
            f"{r.prompt_tokens:,}",
            f"{r.completion_tokens:,}",
            f"{r.cost_nanousd / 1e9:,.6f}",
        )
    if rep.alerts:
        from rich.console import Group
        from rich.text import Text

        return Group(t, *(Text("alert: " + a, style="red") for a in rep.alerts))
    return t
