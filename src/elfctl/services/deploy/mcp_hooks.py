"""Deploy and MCP: team.yaml's `mcp_servers` resolved against the MCP servers declared with `elfctl
mcp add` (an unknown name fails `team validate` and `deploy`, exit 2; a server missing a required
variable or credential fails the deploy before anything is built), and the `mcpServers` document a
replica reads."""

from __future__ import annotations

import hashlib
import json
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


def config_secret(app, spec) -> dict[str, Any]:
    """{ELFCTL_MCP_CONFIG: the team's mcpServers document as a Secret} for the target, which gives
    each replica it as a read-only file (Docker: beside the team's secret files; Kubernetes: from the
    team's `<team>-mcp` Secret); nothing when the team names none."""
    if not spec.mcp_servers:
        return {}
    from elfctl.redact import secret
    from elfctl.services.mcp.app import resolver

    doc = mcp_servers_doc(app, spec, resolver(app, command=f"elfctl deploy {spec.name}"))
    return {sj.CONFIG_ENV: secret(json.dumps(doc, sort_keys=True))}


def config_mark(app, spec) -> str:
    """What the team's servers are (their specs, names only) and which versions of their credentials
    they get, as a short digest: part of the deploy's config key, so a changed server or a rotated
    credential rolls out while an unchanged one answers `unchanged`. No value goes in."""
    found = check_declared(app, [spec])
    if not found:
        return ""
    names = sorted({c for e in found.values() for c in sj.secret_names(e.metadata)})
    versions = []
    if names and "credentials" in app.store.tables():
        versions = sorted((r["name"], r["scope"], int(r["version"])) for r in app.store.query(
            f"SELECT name, scope, version FROM credentials WHERE scope IN (?, '') "
            f"AND name IN ({', '.join('?' * len(names))})", (spec.name, *names)))
    text = json.dumps([{n: e.metadata for n, e in sorted(found.items())}, versions], sort_keys=True)
    return "mcp:" + hashlib.sha256(text.encode()).hexdigest()[:16]
