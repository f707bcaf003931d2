"""`elfctl mcp add | list | show | rm | export`: MCP servers as registry entries of kind `mcp`, their
spec (domain.mcp_server_json) as the entry's metadata. Only credential NAMES are stored."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from elfctl.domain import mcp_server_json as sj
from elfctl.domain import registry as rules
from elfctl.domain.registry import Entry
from elfctl.errors import InputError
from elfctl.services.registry import entries as reg

KIND = "mcp"
ACTOR = "mcp"


def build(name: str | None, command: str | None, url: str | None, env: list[str] | None, secret: list[str] | None,
          header: list[str] | None, secret_header: list[str] | None, from_file: Path | None,
          require: list[str] | None = None) -> tuple[str, dict[str, Any]]:
    """(name, spec) from the flags of `mcp add`: exactly one of --command, --url, --from."""
    given = [f for f, v in (("--command", command), ("--url", url), ("--from", from_file)) if v is not None]
    if len(given) != 1:
        raise InputError("mcp add: give one of --command, --url or --from" + (f" (got {' and '.join(given)})" if given else ""),
                         hint='e.g. elfctl mcp add files --command "npx -y @modelcontextprotocol/server-filesystem /data"')
    if from_file is not None:
        short, spec = read_server_json(from_file)
        name = name or short
        spec["env"] = {**spec.get("env", {}), **sj.pairs(env, "--env")}
        spec["secrets"] = sj.pairs(secret, "--secret") if spec["transport"] == "stdio" else {}
        if spec["transport"] != "stdio":
            spec["headers"] = {**spec.get("headers", {}), **sj.pairs(header, "--header", sj._HEADER)}
            spec["secret_headers"] = sj.pairs(secret_header, "--secret-header", sj._HEADER)
        spec = sj._secrets_checked(spec)
    elif command is not None:
        if header or secret_header:
            raise InputError("--header/--secret-header go with --url", hint="a stdio server takes --env/--secret")
        spec = sj.stdio(command, sj.pairs(env, "--env"), sj.pairs(secret, "--secret"), require)
        _check_command(spec["command"])
    else:
        if env or secret:
            raise InputError("--env/--secret go with --command", hint="an HTTP server takes --header/--secret-header")
        spec = sj.remote(url, sj.pairs(header, "--header", sj._HEADER), sj.pairs(secret_header, "--secret-header", sj._HEADER))
    if name is None:
        raise InputError("mcp add: NAME is missing", hint="elfctl mcp add NAME --command ... | --url ...")
    return rules.check_name(name), spec


def _check_command(command: str) -> None:
    """The command must exist here to be checked here (a team's image needs it too: see the README)."""
    found = shutil.which(command) if os.sep not in command else (command if os.access(command, os.X_OK) else None)
    if found is None:
        raise InputError(f"--command: {command!r} is not an executable on this machine's PATH",
                         hint="install it, or give its full path")


def read_server_json(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"--from {path}: cannot read ({exc.strerror})", hint="check the path") from None
    except ValueError as exc:
        raise InputError(f"--from {path}: not valid JSON: {exc}", hint="fix the syntax") from None
    return sj.parse(doc, str(path))


def add(store, name: str, spec: dict[str, Any], owner: str | None = None) -> Entry:
    url = spec.get("url") if spec["transport"] != "stdio" else None
    entry = Entry(name, kind=KIND, url=url, owner=owner, capabilities=("mcp",), metadata=spec, source="mcp add")
    return reg.register(store, entry)


def get(store, name: str) -> Entry:
    e = reg.get(store, rules.check_name(name))
    if e is None or e.kind != KIND:
        raise reg.NotRegistered(f"mcp: no server {name!r}", hint="see `elfctl mcp list`, or add it with `elfctl mcp add`")
    return e


def list_(store) -> list[Entry]:
    return reg.find(store, kind=KIND)


def remove(store, name: str) -> None:
    get(store, name)
    reg.deregister(store, name)


def export(store, name: str) -> dict[str, Any]:
    return sj.write(name, get(store, name).metadata)


def row(e: Entry) -> dict[str, Any]:
    """An entry as `mcp list/show` print it: names of secrets, never values (there are none stored)."""
    spec = e.metadata
    out = {"name": e.name, "transport": spec.get("transport"), "target": sj.describe(spec), "status": e.status,
           "note": e.note or e.reason, "checked_at": e.heartbeat_at}
    for key in ("env", "secrets", "headers", "secret_headers", "required", "server_name", "version"):
        if spec.get(key):
            out[key] = spec[key]
    return out
