"""Registry entries and their liveness, the Consul way: pure rules, no I/O.

An entry with a TTL is `passing` while heartbeats arrive, `warning` once one is late (more than
half the TTL since the last: clients are expected to beat at least twice per TTL, as Consul
advises), `critical` once the TTL has passed, and gone once it has been critical for
`deregister_after`. A heartbeat may also report warn or fail itself. Everything is computed from the
stored timestamps at read time, so no daemon is needed for the answers to be right."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from elfctl.domain.names import CAPABILITY, DNS1123_HINT, LIFECYCLES, is_dns_label
from elfctl.errors import InputError

STATUSES = ("passing", "warning", "critical")
HEARTBEAT = {"pass": "passing", "warn": "warning", "fail": "critical"}  # what a heartbeat may say
_RANK = {s: i for i, s in enumerate(STATUSES)}


@dataclass
class Entry:
    """One registered team, service, MCP server, database or outside agent. `metadata` holds what is
    particular to a kind (a team's revision and digest, an MCP server's transport, an agent card)."""

    name: str
    kind: str = "service"
    url: str | None = None
    endpoints: dict[str, str] = field(default_factory=dict)
    owner: str | None = None
    lifecycle: str | None = None
    capabilities: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    ttl_s: float | None = None
    deregister_after_s: float | None = None
    check_status: str = "passing"  # what the last heartbeat said
    note: str = ""
    heartbeat_at: str = ""
    registered_at: str = ""
    source: str = "cli"
    status: str = "passing"  # computed at read time (liveness)
    reason: str = ""  # why that status


def check_name(name: object, what: str = "name") -> str:
    if not is_dns_label(name):
        raise InputError(f"{what} {name!r} is not a DNS-1123 label", hint=DNS1123_HINT)
    return name  # type: ignore[return-value]


def check_url(url: str | None, what: str = "--url") -> str | None:
    """A URL with a scheme and a host (http://seo:8080, postgresql://db:5432/x); no password in it."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError as exc:
        raise InputError(f"{what} {url!r}: {exc}", hint="write it as scheme://host:port/path") from None
    if not parts.scheme or not parts.netloc or any(c.isspace() for c in url):
        raise InputError(f"{what} {url!r} has no scheme://host",
                         hint=f"write it with its scheme, e.g. http://{url}" if "://" not in url
                         else "write it as scheme://host:port/path")
    if parts.password:
        raise InputError(f"{what}: the URL carries a password", hint="register the URL without it; keep the "
                         "password in `elfctl creds set`")
    return url


def check_capabilities(caps, what: str = "--capability") -> tuple[str, ...]:
    out = []
    for cap in caps or ():
        if not isinstance(cap, str) or not CAPABILITY.match(cap):
            raise InputError(f"{what} {cap!r} is not a capability tag",
                             hint="use lower case letters, digits, '.', '_' and '-', e.g. seo or copywriting")
        if cap not in out:
            out.append(cap)
    return tuple(out)


def check_lifecycle(value: str | None, what: str = "--lifecycle") -> str | None:
    if value is not None and value not in LIFECYCLES:
        raise InputError(f"{what} {value!r} is not a lifecycle", hint=f"use one of {', '.join(LIFECYCLES)}")
    return value


def parse_seconds(text: str | None, what: str) -> float | None:
    """'30s', '10m', '1h' -> seconds (credentials' duration syntax); None stays None; zero refused."""
    if text is None:
        return None
    from elfctl.domain.credentials import parse_duration

    seconds = parse_duration(str(text).strip(), what).total_seconds()
    if seconds <= 0:
        raise InputError(f"{what}: {text!r} must be longer than 0", hint="e.g. 30s or 10m")
    return seconds


def heartbeat_status(value: str) -> str:
    if value not in HEARTBEAT:
        raise InputError(f"--status {value!r} is not a heartbeat status", hint="use pass, warn or fail")
    return HEARTBEAT[value]


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def liveness(e: Entry, now: dt.datetime) -> tuple[str, str, dt.datetime | None]:
    """(status, reason, critical since or None) of an entry at `now`."""
    beat = _ts(e.heartbeat_at)
    status, reason = e.check_status, e.note or f"heartbeat {e.check_status}"
    since = beat if status == "critical" else None
    if e.ttl_s:
        age = (now - beat).total_seconds()
        if age > e.ttl_s:
            expired = beat + dt.timedelta(seconds=e.ttl_s)
            status, reason = "critical", f"no heartbeat for {age:.0f}s (ttl {e.ttl_s:g}s)"
            since = min(since, expired) if since else expired
        elif age > e.ttl_s / 2 and _RANK[status] < _RANK["warning"]:
            status, reason = "warning", f"heartbeat late: {age:.1f}s ago (ttl {e.ttl_s:g}s)"
    return status, reason, since


def expired(e: Entry, now: dt.datetime) -> bool:
    """Critical for longer than its deregister_after: to be removed."""
    if not e.deregister_after_s:
        return False
    _status, _reason, since = liveness(e, now)
    return since is not None and (now - since).total_seconds() >= e.deregister_after_s


def worst(statuses) -> str:
    return max(statuses, key=_RANK.__getitem__, default="passing")


def cycle(graph: dict[str, tuple[str, ...] | list[str]], first: str | None = None) -> list[str] | None:
    """A depends_on loop as [a, b, ..., a] (starting at `first` when it is on one), or None.
    Iterative DFS (a long chain must not recurse)."""
    colour: dict[str, int] = {}
    for start in ([first] if first in graph else []) + sorted(graph):
        if colour.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                colour[node] = 1
                path.append(node)
            deps = list(graph.get(node, ()))
            if i < len(deps):
                stack.append((node, i + 1))
                nxt = deps[i]
                if colour.get(nxt) == 1:
                    return path[path.index(nxt):] + [nxt]
                if not colour.get(nxt):
                    stack.append((nxt, 0))
            else:
                colour[node] = 2
                path.pop()
    return None


def loop_error(loop: list[str], where: str) -> InputError:
    return InputError(f"{where}: depends_on loop {' -> '.join(loop)}",
                      hint=f"remove one of these dependencies (e.g. {loop[-2]} -> {loop[-1]})")
