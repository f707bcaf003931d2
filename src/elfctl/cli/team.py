from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.common import JsonOpt, get_app

app = typer.Typer(
    help="Describe teams: scaffold, list and validate teams/<name>/team.yaml; remove a team.",
    no_args_is_help=True,
)


def _table(rows, title: str):
    from rich.table import Table

    table = Table(title=title)
    for col in ("team", "valid", "port", "replicas", "host port", "problem"):
        table.add_column(col)
    for r in rows:
        problem = "" if r.valid else f"{r.error}\nhint: {r.hint}"
        table.add_row(
            r.name,
            "yes" if r.valid else "[red]no[/]",
            str(r.port or ""),
            str(r.replicas or ""),
            str(r.host_port or "auto" if r.valid else ""),
            problem,
        )
    return table


@app.command("new")
def new(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Team name (a DNS-1123 label).")],
    description: Annotated[str, typer.Option("--description", "-d", help="One line about the team.")] = "",
    json_mode: JsonOpt = False,
) -> None:
    """Scaffold teams/NAME: team.yaml, a Dockerfile on the local base image, a health document."""
    from elfctl.services.deploy import teams

    app_ = get_app(ctx, json_mode)
    result = teams.new(app_.teams_dir, name, app_.config.get("deploy.base_image"), description)
    app_.output.result(
        result, lambda r: f"created {r.folder}: {', '.join(r.files)}\nnext: `elfctl deploy {r.name}`"
    )


@app.command("list")
def list_(ctx: typer.Context, json_mode: JsonOpt = False) -> None:
    """Every team under teams.dir, with whether its team.yaml is valid."""
    from elfctl.services.deploy import teams

    app_ = get_app(ctx, json_mode)
    rows = teams.rows(app_.teams_dir)
    app_.output.result(
        rows,
        lambda rs: (
            _table(rs, f"teams in {app_.teams_dir}")
            if rs
            else f"no teams in {app_.teams_dir}: create one with `elfctl team new NAME`"
        ),
    )


@app.command("validate")
def validate(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this team.")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Check every team.yaml (or one): exit 2 naming the file, the field and the fix."""
    from elfctl.services.deploy import teams

    app_ = get_app(ctx, json_mode)
    rows = teams.validate(app_.teams_dir, name)
    teams.check_mcp_servers(app_, name)
    app_.output.result(rows, lambda rs: f"{len(rs)} team(s) valid: {', '.join(r.name for r in rs)}")


def _ask(plan: str) -> bool:
    import sys

    from elfctl.errors import InputError

    if not sys.stdin.isatty():
        raise InputError(f"team rm asks before it will {plan.split(';')[0]}, and stdin is not a terminal",
                         hint="pass --yes to remove without asking")
    return typer.confirm(f"{plan[0].upper()}{plan[1:]}. Go ahead?", err=True)


def _removed(r) -> str:
    lines = [f"team {r.name}: " + ("stopped on " if r.stopped else "nothing was running on ") + r.target]
    if r.removed_revisions:
        lines.append(f"revision {', '.join(map(str, r.removed_revisions))} recorded as removed; "
                     "`elfctl health` no longer checks it")
    if r.revoked_keys:
        lines.append(f"LLM gateway keys revoked: {', '.join(r.revoked_keys)}")
    lines.append(f"history kept: {r.history} deployment(s) (`elfctl deployments {r.name}`)")
    if r.purge:
        lines.append(f"images removed: {', '.join(r.images_removed) or 'none on this engine'}")
        lines.append(f"registry tags removed: {', '.join(r.registry_removed) or 'none'}")
    lines += [f"kept: {k}" for k in r.kept]
    if r.folder is not None:
        lines.append(f"{r.folder} is left as it is: delete it yourself, or `elfctl deploy {r.name}` "
                     "brings the team back")
    return "\n".join(lines)


@app.command("rm")
def rm(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The team to remove.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    purge: Annotated[bool, typer.Option(
        "--purge", help="Also remove its images from this engine and (best effort) its registry tags.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Stop a team on its deploy target; keep its history (and images unless --purge). teams/NAME stays."""
    from elfctl.services.deploy.app import remove_team

    app_ = get_app(ctx, json_mode)
    result = remove_team(app_, name, purge=purge, confirm=None if yes else _ask)
    app_.output.result(result, _removed)
