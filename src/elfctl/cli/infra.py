from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.common import JsonOpt, finish, get_app

app = typer.Typer(help="Stand the platform up, inspect it, take it down.", no_args_is_help=True)


@app.command("up")
def up(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only this step (repeatable).")] = None,
    skip: Annotated[list[str] | None, typer.Option("--skip", help="Skip this step (repeatable).")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Bring the platform up, idempotently: environment, store, registry, target, teams, then health."""
    from elfctl.cli.health import failing, render
    from elfctl.services.platform.app import infra_up

    app_ = get_app(ctx, json_mode)
    result = infra_up(app_, dry_run=dry_run, only=only or [], skip=skip or [])

    def human(r):
        from rich.console import Group
        from rich.table import Table

        table = Table(title="elfctl infra up" + (" (dry run)" if r.dry_run else ""))
        for col in ("step", "result", "details"):
            table.add_column(col)
        for s in r.steps:
            table.add_row(s.name, s.outcome, s.details)
        parts = [table]
        if r.health is not None:
            parts.append(render(r.health))
        parts.append("nothing changed: the platform was already up" if not r.changed and not r.dry_run
                     else "")
        return Group(*parts)

    finish(app_, result, human, failing(result.health) if result.health else None)


@app.command("status")
def status(ctx: typer.Context, json_mode: JsonOpt = False) -> None:
    """What is up: store, Docker, registry, deploy target, each deployed team. Changes nothing."""
    from elfctl.services.platform.app import infra_status

    app_ = get_app(ctx, json_mode)
    result = infra_status(app_)

    def human(r):
        from rich.table import Table

        table = Table(title="elfctl infra status")
        for col in ("component", "state", "details"):
            table.add_column(col)
        for c in r.components:
            state = c["state"] if c["state"] == "up" else f"[red]{c['state']}[/]"
            table.add_row(c["component"], state, c["details"])
        return table

    down = [c["component"] for c in result.components if c["state"] not in ("up", "orphaned")]
    failure = None
    if result.exit_code:
        from elfctl.errors import OperationFailed

        failure = OperationFailed(f"not up: {', '.join(down)}", hint="`elfctl infra up` brings the platform up")
    finish(app_, result, human, failure)


@app.command("down")
def down(
    ctx: typer.Context,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also remove the registry volume, network and images.")
    ] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Stop the teams and the local registry; data stays unless --purge."""
    from elfctl.services.platform.app import infra_down

    app_ = get_app(ctx, json_mode)
    result = infra_down(app_, purge)
    app_.output.result(result, lambda r: "\n".join(
        [f"stopped {s}" for s in r.stopped] + [f"removed {s}" for s in r.removed]
        + [f"kept {s}" for s in r.kept]
        or ["nothing was running"]))
