from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.bounds import bounded
from elfctl.cli.common import JsonOpt, finish, get_app

STYLE = {"healthy": "green", "warning": "yellow", "critical": "red", "exhausted": "bold red",
         "unknown": "dim", "not_configured": "dim"}


def render(snap):
    from rich.console import Group
    from rich.table import Table

    table = Table(title=f"elfctl resources: {snap.status}")
    for col in ("resource", "subject", "status", "used", "details"):
        table.add_column(col)
    for t in snap.types:
        for i, r in enumerate(t.readings):
            used = "" if r.value is None else f"{r.value:g}%"
            table.add_row(t.type if i == 0 else "", r.subject, f"[{STYLE[r.status]}]{r.status}[/]", used, r.detail)
    if not snap.steps:
        return table
    steps = Table(title="policies" + ("" if snap.applied else " (dry run: --apply carries them out)"))
    for col in ("resource", "strategy", "target", "result", "trigger"):
        steps.add_column(col)
    for s in snap.steps:
        result = f"would {s.action}" if s.result == "would" else s.result
        steps.add_row(s.type, s.strategy, s.target, result, s.trigger)
    return Group(table, steps)


def resources(
    ctx: typer.Context,
    apply: Annotated[bool, typer.Option("--apply", help="Carry out the platform policies (scale_down, "
                                        "circuit_break) instead of printing what they would do.")] = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Measure again every --interval until Ctrl-C "
                                        "(with --json: one JSON object per line).")] = False,
    interval: Annotated[float | None, typer.Option("--interval", help="Seconds between rounds with --watch "
                                                   "(default resources.interval_s).",
                                                   callback=bounded(0.1, 86400))] = None,
    count: Annotated[int | None, typer.Option("--count", help="With --watch: stop after this many rounds.",
                                              callback=bounded(1, 10**9))] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Measure the 8 resource types concurrently (api_quota, memory, cpu, database, mcp_server,
    network, docker, k8s_pod) against their thresholds; exit 1 when any is critical or exhausted."""
    from elfctl.services.resources.app import snapshot

    app = get_app(ctx, json_mode)
    if watch:
        _watch(app, lambda: snapshot(app, apply=apply), interval or app.config.get("resources.interval_s"), count)
        raise typer.Exit(0)
    snap = snapshot(app, apply=apply)
    finish(app, snap, render, failing(snap))


def _watch(app, produce, interval_s: float, count: int | None) -> None:
    """Every round measured (and applied) again; JSON lines or a table per round without a terminal,
    the table refreshed in place with one."""
    import json
    import sys
    import time

    from elfctl.output import to_data
    from elfctl.redact import scrub

    live_table = not app.output.json and app.output.out.is_terminal
    live = None
    rounds = 0
    try:
        while True:
            snap = produce()
            rounds += 1
            if app.output.json:
                sys.stdout.write(scrub(json.dumps(to_data(snap))) + "\n")
                sys.stdout.flush()
            elif live_table:
                if live is None:
                    from rich.live import Live

                    live = Live(render(snap), console=app.output.out, auto_refresh=False)
                    live.start()
                live.update(render(snap), refresh=True)
            else:
                app.output.result(snap, render)
            if count is not None and rounds >= count:
                break
            time.sleep(interval_s)
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.stop()


def failing(snap):
    from elfctl.services.resources.status import BAD

    names = [t.type for t in snap.types if t.status in BAD]
    if not names:
        return None
    from elfctl.errors import OperationFailed

    return OperationFailed(f"resources: {', '.join(names)} critical",
                           hint="see each reading's details; `elfctl resources --apply` applies the policies")
