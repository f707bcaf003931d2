"""The root command. Groups are plain Typer apps whose modules import only typer: every SDK and
service is imported inside the command that runs, so `elfctl --help` stays instant."""

from __future__ import annotations

from typing import Annotated

import typer

from elfctl import __version__
from elfctl.cli import config_cmd, cost, creds, db, health, infra, init_cmd, team
from elfctl.cli import deploy as deploy_cmd
from elfctl.cli import k8s as k8s_cmd
from elfctl.cli import llm as llm_cli
from elfctl.cli.common import ElfGroup

app = typer.Typer(
    cls=ElfGroup,
    name="elfctl",
    help="Run a platform of AI-agent teams: infra, deploys, LLM cost, health, credentials, schema.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"elfctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    json_mode: Annotated[bool, typer.Option("--json", help="Machine output (JSON) on stdout.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="Use the profiles.NAME table of elfctl.toml.")
    ] = None,
    store: Annotated[
        str | None, typer.Option("--store", help="Store URL (overrides store.url / ELFCTL_STORE_URL).")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    context: Annotated[
        str | None, typer.Option("--context", help="Kubernetes context of the kubeconfig (as kubectl --context).")
    ] = None,
) -> None:
    from elfctl.app import App
    from elfctl.output import Output

    if debug:
        import logging

        from elfctl.redact import RedactingFilter

        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
        for handler in logging.getLogger().handlers:
            handler.addFilter(RedactingFilter())
    ctx.obj = App(Output(json_mode=json_mode, debug=debug, quiet=quiet), profile=profile,
                  overrides={"store.url": store, "kubernetes.context": context})
    ctx.call_on_close(ctx.obj.close)


app.command("init")(init_cmd.init)
app.add_typer(config_cmd.app, name="config")
app.add_typer(db.app, name="db")
app.add_typer(infra.app, name="infra")
app.add_typer(cost.app, name="cost")
app.command("health")(health.health)
app.add_typer(team.app, name="team")
app.command("deploy")(deploy_cmd.deploy)
app.command("rollback")(deploy_cmd.rollback)
app.command("deployments")(deploy_cmd.deployments)
app.command("logs")(deploy_cmd.logs)
app.add_typer(creds.app, name="creds")
app.add_typer(llm_cli.app, name="llm")
app.add_typer(k8s_cmd.app, name="k8s")


def main() -> None:
    app()
