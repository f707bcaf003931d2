"""`elfctl gateway serve` and `elfctl gateway key create|list|revoke`."""

from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.common import JsonOpt, get_app

app = typer.Typer(help="The LLM gateway: an OpenAI-compatible endpoint for teams, costed, budgeted, keyed.",
                  no_args_is_help=True)
key_app = typer.Typer(help="Team keys of the gateway: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(key_app, name="key")

FACTORY = "elfctl.cli.gateway:asgi"


def asgi():
    """Build the ASGI app in a gateway worker process (uvicorn calls this by its import string). The
    configuration comes from the environment and the working folder, as `serve` left them."""
    from elfctl.app import App
    from elfctl.output import Output
    from elfctl.services.gateway import asgi as server
    from elfctl.services.gateway.app import Gateway

    server.log_to_stderr()
    run = App(Output(quiet=True))
    return server.Server(Gateway(run.config, run.store, run.gateway_caller, on_close=run.close))


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default gateway.host).")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535,
                                             help="Port (default gateway.port).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, max=64,
                                                help="Worker processes (default gateway.workers).")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Serve the OpenAI-compatible API (POST /v1/chat/completions, /v1/embeddings, GET /v1/models,
    GET /health) until Ctrl-C or SIGTERM."""
    import os

    from elfctl.services.gateway import app as gateway

    app_ = get_app(ctx, json_mode)
    cfg = app_.config
    # Worker processes read their configuration again: hand them what flags changed.
    if cfg.get("store.url"):
        os.environ["ELFCTL_STORE_URL"] = cfg.get("store.url")
    if cfg.profile:
        os.environ["ELFCTL_PROFILE"] = cfg.profile
    gateway.preflight(app_.store)  # an unreachable or unmigrated store fails here, in the operator's terminal

    def ready(url: str) -> None:
        if app_.output.json:
            app_.output.result({"url": url, "workers": workers or cfg.get("gateway.workers")})
        else:
            app_.output.info(f"gateway serving on {url} (Ctrl-C stops)")

    gateway.serve(cfg, FACTORY, host, port, workers, ready)


@key_app.command("create")
def key_create(
    ctx: typer.Context,
    team: Annotated[str, typer.Argument(help="The team the key is for (a DNS-1123 label).")],
    expires: Annotated[str | None, typer.Option("--expires", help="Valid for a duration (90d, 12h) or until "
                                                                   "an ISO date; default: until revoked.")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Create a key for TEAM. The key is printed once and only its hash is stored."""
    from elfctl.services.gateway import app as gateway

    app_ = get_app(ctx, json_mode)
    r = gateway.create_key(app_.store, team, expires)

    def human(r):
        until = f", expires {r['expires_at']}" if r["expires_at"] else ""
        return (f"{r['key']}\nkey {r['prefix']} for team {r['team']}{until}: "
                "shown once, store it now (only its hash is kept)")

    app_.output.result(r, human)


@key_app.command("list")
def key_list(
    ctx: typer.Context,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's keys.")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Keys by prefix: team, revision, created, last used, expiry, revoked. Never the key itself."""
    from elfctl.services.gateway import keys

    app_ = get_app(ctx, json_mode)
    rows = keys.listing(app_.store, team)

    def human(rows):
        from rich.table import Table

        t = Table("prefix", "team", "revision", "created", "last used", "expires", "revoked", box=None)
        for k in rows:
            t.add_row(k.prefix, k.team, "" if k.revision is None else str(k.revision), k.created_at,
                      k.last_used_at or "never", k.expires_at or "", k.revoked_at or "")
        return t if rows else "no gateway keys (create one with `elfctl gateway key create TEAM`)"

    app_.output.result(rows, human)


@key_app.command("revoke")
def key_revoke(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Argument(help="The key's prefix, as `gateway key list` shows it.")],
    json_mode: JsonOpt = False,
) -> None:
    """Revoke a key: every gateway process refuses it within a second."""
    from elfctl.services.gateway import app as gateway

    app_ = get_app(ctx, json_mode)
    app_.output.result(gateway.revoke_key(app_.store, prefix), lambda r: f"key {r['prefix']} revoked")
