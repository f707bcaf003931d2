from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.common import JsonOpt, get_app

app = typer.Typer(help="Kubernetes target: render a team's manifests for GitOps or review.", no_args_is_help=True)


@app.command("render")
def render(
    ctx: typer.Context,
    team: Annotated[str, typer.Argument(help="Team name (teams/<name>/team.yaml).")],
    image: Annotated[str | None, typer.Option("--image", help="Image reference, best pinned by digest.")] = None,
    revision: Annotated[int, typer.Option("--revision", help="Revision recorded on the Deployment.")] = 0,
    json_mode: JsonOpt = False,
) -> None:
    """Print the team's ConfigMap, Service and Deployment as YAML, validated against the official
    schema; touches no cluster. Secrets appear by name only."""
    from elfctl.services.deploy.app import render_team

    app_ = get_app(ctx, json_mode)
    print_rendered(app_, render_team(app_, team, image=image, revision=revision))


def print_rendered(app_, result) -> None:
    """YAML on stdout as is (never re-wrapped to the terminal's width); JSON with --json."""

    def human(r):
        import sys

        from elfctl.redact import scrub

        sys.stdout.write(scrub(r.yaml))
        sys.stdout.flush()
        return None

    app_.output.info(f"{result.team}: manifests for namespace {result.namespace}, schema {result.schema_version}")
    app_.output.result(result, human)
