"""`elfctl mcp check`: connect to each server with the SDK (adapters.mcp_client), concurrently, and
give a verdict: ready, needs-config or unavailable. The registry keeps the result as a heartbeat
(a failing server is critical there); a change of status is a row in the actions trail."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elfctl.domain import mcp_server_json as sj
from elfctl.domain.registry import Entry
from elfctl.errors import InputError
from elfctl.services.mcp import servers
from elfctl.services.registry import entries as reg

READY, NEEDS_CONFIG, UNAVAILABLE = "ready", "needs-config", "unavailable"
_BEAT = {READY: "pass", NEEDS_CONFIG: "warn", UNAVAILABLE: "fail"}


@dataclass
class Verdict:
    name: str
    verdict: str
    reason: str = ""
    transport: str = ""
    server: dict[str, Any] = field(default_factory=dict)  # name, version, protocol_version
    counts: dict[str, int] = field(default_factory=dict)  # tools, resources, prompts
    missing: list[str] = field(default_factory=list)  # variables or credentials not set (names only)
    stderr: list[str] = field(default_factory=list)
    seconds: float = 0.0


def exit_code(verdicts: list[Verdict]) -> int:
    """0 all ready; 3 none could be reached (every one unavailable); 1 otherwise."""
    if all(v.verdict == READY for v in verdicts):
        return 0
    return 3 if all(v.verdict == UNAVAILABLE for v in verdicts) else 1


def secret_values(resolve, entries: list[Entry], team: str | None = None) -> tuple[dict[str, Any], set[str]]:
    """{credential name: Secret} for what the entries name, and the names not set. `resolve(names,
    team)` is credentials' resolve with required=False (every read audited there)."""
    wanted = sorted({c for e in entries for c in sj.secret_names(e.metadata)})
    got = resolve(wanted, team) if wanted else {}
    return got, {n for n in wanted if n not in got}


def target(e: Entry, values: dict[str, Any]):
    """The adapter's Target: the entry's spec with its secrets' values (env or headers only)."""
    from elfctl.adapters.mcp_client import Target

    spec = e.metadata
    if spec.get("transport") == "stdio":
        env = {**spec.get("env", {}), **{v: values[c].reveal() for v, c in spec.get("secrets", {}).items()}}
        return Target(e.name, "stdio", command=spec["command"], args=list(spec.get("args", [])), env=env)
    headers = {**spec.get("headers", {}), **{h: values[c].reveal() for h, c in spec.get("secret_headers", {}).items()}}
    return Target(e.name, spec["transport"], url=spec["url"], headers=headers)


def check(store, resolve, names: list[str] | None, timeout_s: float, actor: str = "mcp check",
          record: bool = True) -> list[Verdict]:
    """Check the named servers (all when none named). Needs-config is decided before connecting: a
    server whose required variable or credential is missing is not started."""
    from elfctl.adapters import mcp_client

    if not 0 < timeout_s <= 3600:
        raise InputError(f"--timeout {timeout_s!r} must be more than 0 and at most 3600 seconds", hint="e.g. --timeout 10")
    entries = [servers.get(store, n) for n in names] if names else servers.list_(store)
    values, unset = secret_values(resolve, entries)
    verdicts: dict[str, Verdict] = {}
    runnable = []
    for e in entries:
        spec = e.metadata
        missing = sj.missing_config(spec) + sorted(c for c in sj.secret_names(spec) if c in unset)
        if missing:
            verdicts[e.name] = Verdict(e.name, NEEDS_CONFIG, "not set: " + ", ".join(missing), spec.get("transport", ""),
                                       missing=missing)
        else:
            runnable.append(e)
    secrets = [s.reveal() for s in values.values()]
    for p in mcp_client.check_all([target(e, values) for e in runnable], timeout_s):
        spec = next(e.metadata for e in runnable if e.name == p.name)
        v = Verdict(p.name, READY if p.outcome == "ready" else NEEDS_CONFIG if p.outcome == "unauthorized" else UNAVAILABLE,
                    _scrub(p.reason, secrets), spec.get("transport", ""), seconds=round(p.seconds, 3),
                    stderr=[_scrub(line, secrets) for line in p.stderr_tail])
        if p.outcome == "ready":
            v.server = {"name": p.server_name, "version": p.server_version, "protocol_version": p.protocol_version}
            v.counts = {"tools": p.tools, "resources": p.resources, "prompts": p.prompts}
        verdicts[p.name] = v
    ordered = [verdicts[e.name] for e in entries]
    if record:
        for v in ordered:
            note = v.verdict if v.verdict == READY else f"{v.verdict}: {v.reason}"
            reg.heartbeat(store, v.name, _BEAT[v.verdict], note, actor=actor)
    return ordered


def _scrub(text: str, secrets: list[str]) -> str:
    """A server may echo what it was given on stderr: its secret values never reach our output."""
    for s in secrets:
        if s:
            text = text.replace(s, "****")
    return text
