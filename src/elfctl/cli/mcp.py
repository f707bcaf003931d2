from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from elfctl.cli.bounds import bounded
from elfctl.cli.common import JsonOpt, finish, get_app

app = typer.Typer(
    help="MCP servers: declared once (command or URL), checked with the official SDK, handed to the teams that "
         "name them.",
    no_args_is_help=True,
)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Its name (a DNS-1123 label); with --from, default from the file.")] = None,
    command: Annotated[str | None, typer.Option("--command", help='A stdio server: "CMD ARGS..." (not run by a shell).')] = None,
    url: Annotated[str | None, typer.Option(
        "--url", help="A streamable-HTTP server (or legacy SSE when the path ends in /sse).")] = None,
    env: Annotated[list[str] | None, typer.Option("--env", help="VAR=VALUE for a stdio server (repeat).")] = None,
    secret: Annotated[list[str] | None, typer.Option("--secret", help="VAR=CREDENTIAL_NAME: the variable gets "
                                                     "that credential's value at check/deploy time (repeat).")] = None,
    header: Annotated[list[str] | None, typer.Option("--header", help="H=VALUE for an HTTP server (repeat).")] = None,
    secret_header: Annotated[list[str] | None, typer.Option("--secret-header", help="H=CREDENTIAL_NAME (repeat).")] = None,
    require: Annotated[list[str] | None, typer.Option("--require", help="A variable the server cannot start "
                                                      "without (needs-config until --env/--secret gives it).")] = None,
    from_file: Annotated[Path | None, typer.Option("--from", help="The official MCP Registry's server.json.")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Declare an MCP server (or replace the one of that name). Only credential NAMES are stored."""
    from elfctl.services.mcp import servers

    app_ = get_app(ctx, json_mode)
    name, spec = servers.build(name, command, url, env, secret, header, secret_header, from_file, require)
    e = servers.add(app_.store, name, spec)
    app_.output.result(servers.row(e), lambda r: f"added {r['name']} ({r['transport']}: {r['target']})")


@app.command("list")
def list_(ctx: typer.Context, json_mode: JsonOpt = False) -> None:
    """The declared MCP servers with what their last check said."""
    from elfctl.services.mcp import servers

    app_ = get_app(ctx, json_mode)
    rows = [servers.row(e) for e in servers.list_(app_.store)]
    app_.output.result(rows, lambda rs: _table(rs) if rs else "no MCP servers (add one with `elfctl mcp add`)")


def _table(rows):
    from rich.table import Table

    t = Table(title="MCP servers")
    for col in ("name", "transport", "target", "status", "note"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["name"], r["transport"], r["target"], r["status"], r["note"] if r["status"] != "passing" else "")
    return t


@app.command("show")
def show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The server.")], json_mode: JsonOpt = False) -> None:
    """One server: transport, command or URL, variables and the credential names it needs."""
    from elfctl.services.mcp import servers

    app_ = get_app(ctx, json_mode)
    r = servers.row(servers.get(app_.store, name))
    app_.output.result(r, lambda r: "\n".join(f"{k}: {v}" for k, v in r.items()))


@app.command("rm")
def rm(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The server.")], json_mode: JsonOpt = False) -> None:
    """Remove a server (exit 1 when there is none)."""
    from elfctl.services.mcp import servers

    app_ = get_app(ctx, json_mode)
    servers.remove(app_.store, name)
    app_.output.result({"name": name, "removed": True}, lambda r: f"removed {name}")


@app.command("export")
def export(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The server.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write it to this file (default: stdout).")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """The server as the official MCP Registry's server.json (schema 2025-12-11); secrets as names only."""
    import json

    from elfctl.errors import InputError
    from elfctl.services.mcp import servers

    app_ = get_app(ctx, json_mode)
    doc = servers.export(app_.store, name)
    if out is None:
        typer.echo(json.dumps(doc, indent=2))
        return
    try:
        out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write ({exc.strerror})", hint="check the folder") from None
    app_.output.result({"name": name, "written": str(out)}, lambda r: f"wrote {out}")


@app.command("check")
def check(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Servers to check (default: all).")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds each server may take (default 10).",
                                                  callback=bounded(0.1, 3600))] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Connect, negotiate, list tools/resources/prompts: ready, needs-config or unavailable per server.
    Exit 0 all ready, 1 any not, 3 none reachable."""
    from elfctl.cli.creds import _passphrase_prompt
    from elfctl.errors import OperationFailed, Unreachable
    from elfctl.services.mcp import app as svc
    from elfctl.services.mcp import check as checks

    app_ = get_app(ctx, json_mode)
    verdicts = svc.check(app_, names or None, timeout, prompt=_passphrase_prompt)
    code = checks.exit_code(verdicts)
    failure = None
    if code:
        bad = [v for v in verdicts if v.verdict != checks.READY]
        what = f"{len(bad)} of {len(verdicts)} MCP server(s) not ready: {bad[0].name} {bad[0].verdict}"
        hint = f"see `elfctl mcp show {bad[0].name}`"
        failure = (Unreachable if code == 3 else OperationFailed)(what, hint=hint)
    finish(app_, {"servers": verdicts}, _verdicts, failure)


def _verdicts(result) -> str:
    vs = result["servers"]
    if not vs:
        return "no MCP servers to check"
    lines = []
    for v in vs:
        if v.verdict == "ready":
            s, c = v.server, v.counts
            lines.append(f"{v.name}: ready ({s['name']} {s['version'] or '?'}, protocol {s['protocol_version']}, "
                         f"{c['tools']} tools, {c['resources']} resources, {c['prompts']} prompts, {v.seconds:.2f}s)")
        else:
            lines.append(f"{v.name}: {v.verdict}: {v.reason}")
            lines += [f"  stderr: {line}" for line in v.stderr]
    return "\n".join(lines)
