"""Deploy and MCP: team.yaml's `mcp_servers` resolved against the MCP servers declared with `elfctl
mcp add` (an unknown name fails `team validate` and `deploy`, exit 2; a server missing a required
variable or credential fails the deploy before anything is built), and the `mcpServers` document a
replica reads."""

from __future__ import annotations

from typing import Any

from elfctl.domain import mcp_server_json as sj
from elfctl.errors import InputError
from elfctl.services.mcp import servers


def check_declared(app, specs) -> dict[str, Any]:
    """{name: entry} of the servers the teams name; InputError naming the file and the unknown name.
    The store is read only when some team names a server."""
    wanted = [(s, n) for s in specs for n in s.mcp_servers]
    if not wanted:
        return {}
    known = {e.name: e for e in servers.list_(app.store)}
    for spec, name in wanted:
        if name not in known:
            raise InputError(f"{spec.path}: mcp_servers: {name!r} is not a declared MCP server",
                             hint=f"declare it with `elfctl mcp add {name} --command ...` (or --url ...); "
                                  "see `elfctl mcp list`")
    return {n: known[n] for _s, n in wanted}


def before_build(app, spec) -> None:
    """Every server the team names is declared and has what it needs: its required variables given
    and its credentials set (names checked, no value read)."""
    found = check_declared(app, [spec])
    if not found:
        return
    held = {r["name"] for r in app.store.query("SELECT DISTINCT name FROM credentials WHERE scope IN (?, '')",
                                               (spec.name,))} if "credentials" in app.store.tables() else set()
    for name, e in found.items():
        missing = sj.missing_config(e.metadata) + [c for c in sj.secret_names(e.metadata) if c not in held]
        if missing:
            raise InputError(f"{spec.path}: mcp_servers: {name} needs config: not set: {', '.join(missing)}",
                             hint=f"`elfctl creds set {missing[0]}` (or `elfctl mcp add {name} ... --env/--secret`), "
                                  f"then `elfctl mcp check {name}`")


def mcp_servers_doc(app, spec, resolve) -> dict[str, Any]:
    """The `{"mcpServers": {...}}` document for the team's replicas, secret values filled in from
    `resolve(names, team)` (the credential store, the team's scope first)."""
    found = check_declared(app, [spec])
    names = sorted({c for e in found.values() for c in sj.secret_names(e.metadata)})
    values = {n: s.reveal() for n, s in (resolve(names, spec.name) if names else {}).items()}
    return {"mcpServers": {n: sj.mcp_servers_entry(e.metadata, values) for n, e in sorted(found.items())}}
