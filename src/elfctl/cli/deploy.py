"""Top-level deploy commands: deploy, rollback, deployments, logs."""

from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.bounds import bounded, image_tag
from elfctl.cli.common import JsonOpt, finish, get_app

LockWait = Annotated[
    float | None,
    typer.Option(
        "--lock-wait",
        help="Wait up to S seconds for another deploy of the team to finish (default: deploy.lock_wait_s).",
        callback=bounded(0, 86400),
    ),
]


TargetOpt = Annotated[
    str | None,
    typer.Option("--target", help="Deploy target: docker or kubernetes (default: deploy.target)."),
]


def _render(r):
    lines = []
    if r.state == "unchanged":
        lines.append(f"{r.team}: unchanged, {r.reason} (nothing built, pushed or restarted)")
    elif r.state == "planned":
        lines.append(f"{r.team} (dry run): {r.reason}")
    else:
        what = (
            ", ".join(w for w, done in (("built", r.built), ("pushed", r.pushed)) if done) or "image reused"
        )
        lines.append(f"{r.team} revision {r.revision}: {r.state} ({what}) {r.image}")
        if r.digest:
            lines.append(f"  digest {r.digest}")
        lines.append(f"  {r.reason}")
    lines += [f"  warning: {w}" for w in r.warnings]
    if r.logs:
        lines.append("last log lines of the new version:\n" + r.logs)
    return "\n".join(lines)


def _finish(app_, result) -> None:
    err = None
    if result.exit_code:
        from elfctl.errors import OperationFailed

        where = (
            "the previous version keeps serving" if result.state == "rolled_back" else "nothing was switched"
        )
        err = OperationFailed(
            f"{result.team} revision {result.revision} {result.state.replace('_', ' ')}: "
            f"{result.reason}; {where}",
            hint=f"see `elfctl deployments {result.team}`",
        )
    finish(app_, result, _render, err)


def deploy(
    ctx: typer.Context,
    team: Annotated[str, typer.Argument(help="The team (teams/TEAM/team.yaml).")],
    tag: Annotated[str | None, typer.Option("--tag", help="Image tag (default: content hash).", callback=image_tag)] = None,
    no_build: Annotated[
        bool, typer.Option("--no-build", help="Use the image already in the registry.")
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="Watch the new version through the verification window after the switch (default 10 s, "
            "deploy.soak_s); --no-wait returns once switched.",
        ),
    ] = True,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", help="Verification budget in seconds: the health gate, then the window.",
                     callback=bounded(0.1, 86400)),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = False,
    lock_wait: LockWait = None,
    target: TargetOpt = None,
    render: Annotated[
        bool, typer.Option("--render", help="Print the Kubernetes manifests (YAML); touch nothing.")
    ] = False,
    ignore_deps: Annotated[bool, typer.Option(
        "--ignore-deps", help="Deploy even when a depends_on entry is missing or critical (warned).")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Build (by content hash), push, start beside the old, health-gate, switch; roll back on failure."""
    from elfctl.services.deploy.app import deploy_team

    app_ = get_app(ctx, json_mode)
    app_.override("deploy.target", target)
    if render:
        from elfctl.cli.k8s import print_rendered
        from elfctl.services.deploy.app import render_for_deploy

        print_rendered(app_, render_for_deploy(app_, team, tag=tag))
        return
    result = deploy_team(
        app_,
        team,
        tag=tag,
        no_build=no_build or None,
        wait=wait,
        timeout_s=timeout,
        dry_run=dry_run or None,
        lock_wait_s=lock_wait,
        ignore_deps=ignore_deps,
    )
    _finish(app_, result)


def rollback(
    ctx: typer.Context,
    team: Annotated[str, typer.Argument(help="The team.")],
    to: Annotated[
        int | None, typer.Option("--to", help="Revision to return to (default: the one before).", callback=bounded(1, 2**31 - 1))
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Health gate budget in seconds.", callback=bounded(0.1, 86400))
    ] = None,
    lock_wait: LockWait = None,
    target: TargetOpt = None,
    json_mode: JsonOpt = False,
) -> None:
    """Roll a team back to an earlier successful revision, through the same health gate."""
    from elfctl.services.deploy.app import rollback_team

    app_ = get_app(ctx, json_mode)
    app_.override("deploy.target", target)
    _finish(app_, rollback_team(app_, team, to, timeout_s=timeout, lock_wait_s=lock_wait))


def deployments(
    ctx: typer.Context,
    team: Annotated[str | None, typer.Argument(help="Only this team.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many, newest first.", callback=bounded(1, 100_000))] = 20,
    json_mode: JsonOpt = False,
) -> None:
    """Deployment history: revision, state, image, digest, who, when, error."""
    from elfctl.services.deploy.app import deployments as history

    app_ = get_app(ctx, json_mode)
    rows = history(app_, team, limit)

    def human(rs):
        from rich.table import Table

        if not rs:
            return "no deployments recorded"
        table = Table(title="deployments")
        for col in ("team", "rev", "state", "image", "who", "started", "error"):
            table.add_column(col)
        for r in rs:
            table.add_row(
                r["team"],
                str(r["revision"]),
                r["state"],
                (r["image"] or "").rsplit("/", 1)[-1],
                r["who"] or "",
                r["started_at"][:19],
                (r["error"] or "")[:120],
            )
        return table

    app_.output.result(rows, human)


def logs(
    ctx: typer.Context,
    team: Annotated[str, typer.Argument(help="The team.")],
    tail: Annotated[int, typer.Option("--tail", help="Lines from the end.", callback=bounded(0, 1_000_000))] = 100,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    target: TargetOpt = None,
    json_mode: JsonOpt = False,
) -> None:
    """The serving version's log (first replica)."""
    import sys

    from elfctl.redact import scrub
    from elfctl.services.deploy.app import logs as team_logs

    app_ = get_app(ctx, json_mode)
    app_.override("deploy.target", target)
    lines = team_logs(app_, team, tail, follow)
    if app_.output.json and not follow:
        app_.output.result({"team": team, "lines": list(lines)})
        return
    try:
        for line in lines:
            sys.stdout.write(scrub(line) + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
