"""The root command. Groups are plain Typer apps whose modules import only typer: every SDK and
service is imported inside the command that runs, so `elfctl --help` stays instant."""

# No `from __future__ import annotations`: Typer evals annotation strings (a compile each, ~2 ms of
# every command's start for the root's options); evaluated at definition they cost nothing more.
from typing import Annotated

import typer

from elfctl import __version__
from elfctl.cli.common import HELP_MARKUP, ElfGroup

# Every command and group, in the order `elfctl --help` lists them: (module, attribute, one-line help).
# A module is imported, and its commands built, only when it runs: building all ~50 commands on every
# call cost ~40 ms. tests/cli/test_startup.py checks each line against the command's own help.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("elfctl.cli.init_cmd", "init",
             "Write a commented elfctl.toml, a teams/ folder and .elf/ (gitignored). Safe to run twice."),
    "config": ("elfctl.cli.config_cmd", "app", "Show the effective configuration."),
    "db": ("elfctl.cli.db", "app", "Evolve the store's schema: versioned, checksummed, transactional migrations."),
    "infra": ("elfctl.cli.infra", "app", "Stand the platform up, inspect it, take it down."),
    "health": ("elfctl.cli.health", "health", "Check every component concurrently; exit 0 when all pass, "
               "1 when any fails (warnings exit 0 unless --strict)."),
    "team": ("elfctl.cli.team", "app",
             "Describe teams: scaffold, list and validate teams/<name>/team.yaml; remove a team."),
    "deploy": ("elfctl.cli.deploy", "deploy",
               "Build (by content hash), push, start beside the old, health-gate, switch; roll back on failure."),
    "rollback": ("elfctl.cli.deploy", "rollback",
                 "Roll a team back to an earlier successful revision, through the same health gate."),
    "deployments": ("elfctl.cli.deploy", "deployments",
                    "Deployment history: revision, state, image, digest, who, when, error."),
    "logs": ("elfctl.cli.deploy", "logs", "The serving version's log (first replica)."),
    "cost": ("elfctl.cli.cost.commands", "app", "See and bound LLM spend: budgets, reports, dashboard, forecasts."),
    "llm": ("elfctl.cli.llm", "app", "LLM calls through elfctl: budgets, fallbacks, breakers."),
    "creds": ("elfctl.cli.creds", "app",
              "Credentials: stored encrypted (OS keyring or file), injected, rotated, audited."),
    "gateway": ("elfctl.cli.gateway", "app",
                "The LLM gateway: an OpenAI-compatible endpoint for teams, costed, budgeted, keyed."),
    "k8s": ("elfctl.cli.k8s", "app", "Kubernetes target: render a team's manifests for GitOps or review."),
    "notify": ("elfctl.cli.notify", "app", "Alerts to Slack and webhooks: test a channel, list and resend events."),
    "breakers": ("elfctl.cli.resilience", "breakers",
                 "Shared circuit breakers: list, open (isolate) and close (reset) by hand."),
    "queue": ("elfctl.cli.resilience", "queue", "Requests queued by the queue_request strategy: list, drain, drop."),
    "audit": ("elfctl.cli.resilience", "audit", "What the platform and the fallback protocols did by themselves."),
    "resources": ("elfctl.cli.resources", "resources",
                  "Measure the 8 resource types concurrently (api_quota, memory, cpu, database, mcp_server, "
                  "network, docker, k8s_pod) against their thresholds; exit 1 when any is critical or exhausted."),
    "registry": ("elfctl.cli.registry", "app", "The service registry: teams, services, MCP servers and outside "
                 "agents; liveness by heartbeat; discovery by capability."),
    "mcp": ("elfctl.cli.mcp", "app", "MCP servers: declared once (command or URL), checked with the official SDK, "
            "handed to the teams that name them."),
}


class RootGroup(ElfGroup):
    lazy = COMMANDS


app = typer.Typer(
    cls=RootGroup,
    name="elfctl",
    help="Run a platform of AI-agent teams: infra, deploys, LLM cost, health, credentials, schema.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=HELP_MARKUP,
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
    ctx.call_on_close(lambda: _deliver_alerts(ctx.obj))  # runs first: the store is still open


def _deliver_alerts(app) -> None:
    """A command that queued alerts (a failed deploy, a budget crossed) starts a detached sender."""
    import sys

    if "elfctl.services.notify.outbox" in sys.modules and "store" in app.__dict__:
        from elfctl.services.notify.app import kick

        kick(app)


def main() -> None:
    app()
