"""`elfctl cost dashboard`: today's and this month's spend against budgets, by model, per day."""

from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.bounds import bounded
from elfctl.cli.common import JsonOpt, get_app
from elfctl.cli.cost import app

COLOUR = {"ok": "green", "soft": "yellow", "hard": "red", "none": "dim"}


def _bar(ratio, level: str, budget: str, width: int = 12) -> str:
    if ratio is None:
        return "[dim]no budget[/]"
    filled = min(width, int(round(min(ratio, 1.0) * width)))
    return f"[{COLOUR[level]}]{'█' * filled}[/][dim]{'░' * (width - filled)}[/] {ratio:.0%} of {budget}"


def render(d):
    from rich.console import Group
    from rich.text import Text

    from elfctl.services.cost.views import usd

    t, p = d.today_totals, d.period_totals
    head = Text.from_markup(
        f"[bold]elfctl cost dashboard[/]{' · team ' + d.team if d.team else ''} · today {d.today} (UTC) · "
        f"updated {d.generated_at[11:19]}\n"
        f"today {usd(t.cost_nanousd)} in {t.calls:,} calls · {d.since}..{d.until}: {usd(p.cost_nanousd)}, "
        f"{p.calls:,} calls, {p.prompt_tokens + p.completion_tokens:,} tokens, errors {p.error_rate:.1%}, "
        f"fallbacks {p.fallback_rate:.1%}" + (f", {p.unpriced:,} UNPRICED calls" if p.unpriced else "")
    )
    by_team = {v.team: v for v in d.teams}
    risk = Text(
        "Likely to hit a budget today: "
        + (", ".join(f"{n} ({by_team[n].hit_today:.0%} of budget projected)" for n in d.at_risk) or "none")
    )
    breakers = Text(
        "Open breakers: "
        + (", ".join(f"{b.name} ({b.state} since {b.opened_at or '?'})" for b in d.breakers) or "none"),
        style="red" if d.breakers else "",
    )
    # Alerts first: in a short terminal, --watch crops the bottom of the view.
    parts = [head, risk, breakers, _budgets(d, usd), _models(d, usd), _chart(d, usd)] + [
        Text("note: " + n, style="dim") for n in d.notes
    ]
    return Group(*parts)


def _budgets(d, usd):
    from rich.table import Table

    budgets = Table(title="Budgets", title_justify="left", expand=False)
    for col in ("team", "today", "of the daily budget", "month", "of the monthly budget", "today projected"):
        budgets.add_column(col, justify="right" if col in ("today", "month", "today projected") else "left")
    for v in d.teams:
        budgets.add_row(
            v.team,
            usd(v.today_nanousd),
            _bar(v.today_ratio, v.today_level, usd(v.daily_budget_nanousd)),
            usd(v.month_nanousd),
            _bar(v.month_ratio, v.month_level, usd(v.monthly_budget_nanousd)),
            usd(v.projected_today_nanousd),
        )
    return budgets


def _models(d, usd):
    from rich.table import Table

    models = Table(title=f"By model ({d.since}..{d.until})", title_justify="left")
    for col in ("model", "cost", "calls", "prompt tok", "completion tok", "errors", "fallbacks"):
        models.add_column(col, justify="left" if col == "model" else "right")
    for m in d.models:
        models.add_row(
            m.model,
            usd(m.cost_nanousd),
            f"{m.calls:,}",
            f"{m.prompt_tokens:,}",
            f"{m.completion_tokens:,}",
            f"{m.error_rate:.1%}",
            f"{m.fallback_rate:.1%}",
        )
    return models


def _chart(d, usd):
    from rich.table import Table

    top = max((x.cost_nanousd for x in d.daily), default=0) or 1
    chart = Table(title=f"Last {len(d.daily)} days", title_justify="left", show_header=False, box=None)
    chart.add_column("day")
    chart.add_column("bar")
    chart.add_column("cost", justify="right")
    for x in d.daily:
        chart.add_row(
            x.day[5:], "[blue]" + "█" * int(round(x.cost_nanousd / top * 40)) + "[/]", usd(x.cost_nanousd)
        )
    return chart


@app.command("dashboard")
def dashboard(
    ctx: typer.Context,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh in place until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(
        "--interval", help="Seconds between full refreshes (a new call is drawn within a quarter second).",
        callback=bounded(0.1, 86400))] = 2.0,
    team: Annotated[str | None, typer.Option("--team", "-t", help="Only this team.")] = None,
    days: Annotated[
        int, typer.Option("--days", "-d", help="Days in the chart and by-model figures.", callback=bounded(1, 366))
    ] = 14,
    json_mode: JsonOpt = False,
) -> None:
    """Spend against budgets, by model, error and fallback rates, last N days, open breakers.

    Reads the daily rollup only. `--watch` needs a terminal; otherwise one snapshot is printed.
    With --watch, today's totals are checked every 0.25 s and the view redrawn when they move."""
    from elfctl.services.cost.views import dashboard as build

    app_ = get_app(ctx, json_mode)
    store = app_.store
    if not watch or app_.output.json or not app_.output.out.is_terminal:
        app_.output.result(build(store, team=team, days=days), render)
        return
    from rich.live import Live

    from elfctl.services.cost import watch as loop

    try:
        with Live(console=app_.output.out, auto_refresh=False, screen=False) as live:
            loop.watch(lambda: render(build(store, team=team, days=days)),
                       lambda view: live.update(view, refresh=True),
                       lambda: loop.marker(store, team), interval)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
