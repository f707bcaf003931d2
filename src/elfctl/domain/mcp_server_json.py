"""MCP servers as elfctl keeps them (a registry entry's `metadata`), and the official MCP Registry's
`server.json` (schema 2025-12-11) read into and written from that shape. Pure: no I/O.

A spec is a plain dict so it is stored as the entry's metadata as is:
  {"transport": "stdio", "command": str, "args": [...], "env": {VAR: value}, "secrets": {VAR: CRED},
   "required": [VAR...], ...}            # a stdio server; `required`: variables it cannot start without
  {"transport": "streamable-http" | "sse", "url": str, "headers": {H: value}, "secret_headers": {H: CRED}}
plus optional "server_name" (the registry's reverse-DNS name), "version" and "description".
Secrets are credential NAMES; their values live in the credential store only."""

from __future__ import annotations

import re
import shlex
from typing import Any

from elfctl.errors import InputError

CONFIG_ENV = "ELFCTL_MCP_CONFIG"  # a replica's variable: the path of its mcpServers file
CONFIG_FILE = "mcp.json"  # that file's name in the secrets folder (read-only, in memory on the host)
SCHEMA = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
TRANSPORTS = ("stdio", "streamable-http", "sse")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")  # an HTTP token (RFC 9110)
_CRED = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# runtimeHint -> how the package is started (the registry's usual hints)
_RUNNERS = {"npx": ("npx", ["-y"]), "uvx": ("uvx", []), "docker": ("docker", ["run", "-i", "--rm"])}
_DEFAULT_HINT = {"npm": "npx", "pypi": "uvx", "oci": "docker"}


def pairs(values: list[str] | None, flag: str, key_rule: re.Pattern = _VAR) -> dict[str, str]:
    """`--env VAR=VALUE`-style flags as a dict; a malformed one names the flag and the fix."""
    out: dict[str, str] = {}
    for raw in values or []:
        key, sep, value = raw.partition("=")
        if not sep or not key_rule.match(key):
            shown = key if sep else raw.split("=")[0][:40]
            raise InputError(f"{flag} {shown!r}: expected NAME=VALUE with NAME a variable or header name",
                             hint=f"e.g. {flag} API_TOKEN=GITHUB_TOKEN")
        out[key] = value
    return out


def check_url(url: str, field: str) -> str:
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
        raise InputError(f"{field} {url!r} has no http(s)://host", hint="write it as http://host:port/mcp")
    if re.match(r"^https?://[^/@]*:[^/@]*@", url):
        raise InputError(f"{field}: the URL carries a password", hint="pass it as --secret-header instead")
    return url


def stdio(command: str, env: dict[str, str] | None = None, secrets: dict[str, str] | None = None,
          required: list[str] | None = None) -> dict[str, Any]:
    """A stdio spec from `--command "CMD ARGS..."` (split like a shell would, never run by one)."""
    try:
        argv = shlex.split(command or "")
    except ValueError as exc:
        raise InputError(f"--command {command!r}: {exc}", hint="balance the quotes") from None
    if not argv:
        raise InputError("--command is empty", hint='e.g. --command "npx -y @modelcontextprotocol/server-everything"')
    return _secrets_checked({"transport": "stdio", "command": argv[0], "args": argv[1:], "env": dict(env or {}),
                             "secrets": dict(secrets or {}), "required": sorted(set(required or []))})


def remote(url: str, headers: dict[str, str] | None = None, secret_headers: dict[str, str] | None = None,
           transport: str | None = None) -> dict[str, Any]:
    """An HTTP spec; the legacy SSE transport when asked for or when the path ends in /sse."""
    check_url(url, "--url")
    transport = transport or ("sse" if url.rstrip("/").endswith("/sse") else "streamable-http")
    return _secrets_checked({"transport": transport, "url": url, "headers": dict(headers or {}),
                             "secret_headers": dict(secret_headers or {})})


def _secrets_checked(spec: dict[str, Any]) -> dict[str, Any]:
    for key in ("secrets", "secret_headers"):
        for var, cred in spec.get(key, {}).items():
            if not _CRED.match(cred):
                raise InputError(f"--{key.replace('_', '-').rstrip('s')} {var}={cred!r}: not a credential name",
                                 hint="name a credential set with `elfctl creds set NAME`")
    return spec


def secret_names(spec: dict[str, Any]) -> list[str]:
    """The credential names the server needs, in order."""
    return sorted({*spec.get("secrets", {}).values(), *spec.get("secret_headers", {}).values()})


def missing_config(spec: dict[str, Any]) -> list[str]:
    """Variables (or headers) the server requires that nothing (value or secret) provides."""
    given = {*spec.get("env", {}), *spec.get("secrets", {}), *spec.get("headers", {}), *spec.get("secret_headers", {})}
    return [v for v in spec.get("required", []) if v not in given]


def describe(spec: dict[str, Any]) -> str:
    """One line for tables: the command (without env) or the URL."""
    if spec.get("transport") == "stdio":
        return shlex.join([spec["command"], *spec.get("args", [])])
    return spec.get("url", "")


def mcp_servers_entry(spec: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The server in the `mcpServers` shape MCP clients read; `values` maps credential names to the
    values that go into the file (the caller decides where the file lives and who may read it)."""
    if spec["transport"] == "stdio":
        env = {**spec.get("env", {}), **{v: values[c] for v, c in spec.get("secrets", {}).items() if c in values}}
        return {"command": spec["command"], "args": list(spec.get("args", [])), "env": env}
    headers = {**spec.get("headers", {}),
               **{h: values[c] for h, c in spec.get("secret_headers", {}).items() if c in values}}
    out = {"url": spec["url"], "headers": headers}
    if spec["transport"] == "sse":
        out["type"] = "sse"
    return out


# ---- server.json ---------------------------------------------------------------------------------

def _need(doc: dict, key: str, where: str, kind=str):
    value = doc.get(key)
    if value is None or (kind is str and not str(value).strip()):
        raise InputError(f"{where}.{key}: missing", hint=f"server.json needs `{key}` (schema 2025-12-11)")
    if not isinstance(value, kind):
        raise InputError(f"{where}.{key}: must be a {kind.__name__}, got {type(value).__name__}",
                         hint="see the schema at " + SCHEMA)
    return value


def parse(doc: Any, where: str = "server.json") -> tuple[str, dict[str, Any]]:
    """(the short name, the spec) of a server.json: its first package (a command), else its first
    remote (a URL). Values of secret variables are never taken from the file: such a variable
    becomes `required` and is given with --secret VAR=CREDENTIAL_NAME."""
    if not isinstance(doc, dict):
        raise InputError(f"{where}: must be a JSON object", hint="see the schema at " + SCHEMA)
    name = _need(doc, "name", where)
    if "/" not in name or name.startswith("/") or name.endswith("/"):
        raise InputError(f"{where}.name {name!r} has no namespace", hint="write it as io.github.owner/server")
    version = _need(doc, "version", where)
    if version.strip().lower() == "latest":
        raise InputError(f"{where}.version 'latest' is not a version", hint="give an exact version, e.g. 1.0.2")
    packages = doc.get("packages") or []
    remotes = doc.get("remotes") or []
    if not isinstance(packages, list) or not isinstance(remotes, list):
        raise InputError(f"{where}.packages/remotes: must be lists", hint="see the schema at " + SCHEMA)
    if packages:
        spec = _package(packages[0], f"{where}.packages[0]")
    elif remotes:
        spec = _remote(remotes[0], f"{where}.remotes[0]")
    else:
        raise InputError(f"{where}: neither packages nor remotes", hint="a server needs one of them")
    spec.update(server_name=name, version=version, description=str(doc.get("description") or ""))
    short = re.sub(r"[^a-z0-9-]+", "-", name.rsplit("/", 1)[1].lower()).strip("-")[:63].strip("-")
    return short, spec


def _transport(p: dict, where: str) -> str:
    t = p.get("transport")
    if not isinstance(t, dict) or not t.get("type"):
        raise InputError(f"{where}.transport: missing", hint='add "transport": {"type": "stdio"}')
    if t["type"] not in TRANSPORTS:
        raise InputError(f"{where}.transport.type {t['type']!r} is not a transport",
                         hint=f"use one of {', '.join(TRANSPORTS)}")
    return t["type"]


def _package(p: Any, where: str) -> dict[str, Any]:
    if not isinstance(p, dict):
        raise InputError(f"{where}: must be an object", hint="see the schema at " + SCHEMA)
    kind = _need(p, "registryType", where)
    ident = _need(p, "identifier", where)
    version = p.get("version")
    if isinstance(version, str) and version.strip().lower() == "latest":
        raise InputError(f"{where}.version 'latest' is not a version", hint="give an exact version")
    transport = _transport(p, where)
    if transport != "stdio":
        url = (p.get("transport") or {}).get("url")
        return remote(check_url(url, f"{where}.transport.url"), transport=transport)
    hint = p.get("runtimeHint") or _DEFAULT_HINT.get(kind)
    if hint not in _RUNNERS:
        raise InputError(f"{where}.runtimeHint {hint!r} is not known", hint=f"use one of {', '.join(_RUNNERS)}")
    command, args = _RUNNERS[hint]
    env, required = {}, []
    variables = p.get("environmentVariables") or []
    for i, v in enumerate(variables):
        var = _need(v, "name", f"{where}.environmentVariables[{i}]") if isinstance(v, dict) else None
        if var is None or not _VAR.match(var):
            raise InputError(f"{where}.environmentVariables[{i}].name {var!r} is not a variable name",
                             hint="letters, digits and _")
        if v.get("default") is not None and not v.get("isSecret"):
            env[var] = str(v["default"])
        elif v.get("isRequired") or v.get("isSecret"):
            required.append(var)
    pinned = f"{ident}@{version}" if hint == "npx" and version else f"{ident}=={version}" if hint == "uvx" and version \
        else f"{ident}:{version}" if hint == "docker" and version and ":" not in ident.rsplit("/", 1)[-1] else ident
    if hint == "docker":  # a container sees only the variables named on its command line
        args = [*args, *(a for var in [*env, *required] for a in ("-e", var))]
    extra = [str(a["value"]) for a in p.get("packageArguments") or []
             if isinstance(a, dict) and a.get("type") == "positional" and a.get("value") is not None]
    return {"transport": "stdio", "command": command, "args": [*args, pinned, *extra], "env": env, "secrets": {},
            "required": sorted(set(required)), "package": {
                "registryType": kind, "identifier": ident, "version": version, "runtimeHint": hint,
                "packageArguments": [{"type": "positional", "value": a} for a in extra]}}


def _remote(r: Any, where: str) -> dict[str, Any]:
    if not isinstance(r, dict):
        raise InputError(f"{where}: must be an object", hint="see the schema at " + SCHEMA)
    kind = _need(r, "type", where)
    if kind not in ("streamable-http", "sse"):
        raise InputError(f"{where}.type {kind!r} is not a remote transport", hint="use streamable-http or sse")
    url = check_url(_need(r, "url", where), f"{where}.url")
    headers, required = {}, []
    for i, h in enumerate(r.get("headers") or []):
        hname = _need(h, "name", f"{where}.headers[{i}]") if isinstance(h, dict) else None
        if hname is None or not _HEADER.match(hname):
            raise InputError(f"{where}.headers[{i}].name {hname!r} is not a header name", hint="e.g. Authorization")
        if h.get("value") is not None and not h.get("isSecret"):
            headers[hname] = str(h["value"])
        elif h.get("isRequired") or h.get("isSecret"):
            required.append(hname)
    return {**remote(url, headers, transport=kind), "required": sorted(set(required))}


def write(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A server.json for a spec (no secret values: a secret is a variable or header marked isSecret)."""
    doc: dict[str, Any] = {"$schema": SCHEMA, "name": spec.get("server_name") or f"local.elfctl/{name}",
                           "description": spec.get("description") or f"{name} (exported by elfctl)",
                           "version": spec.get("version") or "0.0.0"}
    if spec["transport"] == "stdio":
        pkg = dict(spec.get("package") or {})
        if not pkg:  # a plain command: the registry has no "run this" type, so say it as a hint
            pkg = {"registryType": "pypi", "identifier": spec["command"], "runtimeHint": spec["command"],
                   "packageArguments": [{"type": "positional", "value": a} for a in spec.get("args", [])]}
        variables = [{"name": k, "default": v, "isRequired": False, "isSecret": False}
                     for k, v in sorted(spec.get("env", {}).items())]
        variables += [{"name": k, "isRequired": True, "isSecret": True}
                      for k in sorted({*spec.get("secrets", {}), *spec.get("required", [])} - set(spec.get("env", {})))]
        pkg = {k: v for k, v in pkg.items() if v}
        doc["packages"] = [{**pkg, "transport": {"type": "stdio"}, "environmentVariables": variables}]
    else:
        headers = [{"name": k, "value": v, "isRequired": False, "isSecret": False}
                   for k, v in sorted(spec.get("headers", {}).items())]
        headers += [{"name": k, "isRequired": True, "isSecret": True}
                    for k in sorted({*spec.get("secret_headers", {}), *spec.get("required", [])} - set(spec.get("headers", {})))]
        doc["remotes"] = [{"type": spec["transport"], "url": spec["url"], "headers": headers}]
    return doc
