"""The official `mcp` SDK (2.x) as elfctl uses it: connect to a server over stdio, streamable HTTP or
legacy SSE, initialize, list tools/resources/prompts, and say what happened. The only module that
imports `mcp` (and its `httpx2`)."""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass, field

_IMPORTING = threading.Lock()


@dataclass
class Target:
    """What to connect to: a spec (domain.mcp_server_json) with the secret values filled in."""
    name: str
    transport: str
    command: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # only what the entry names (plus the SDK's safe set)
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Probe:
    name: str
    outcome: str  # "ready" | "unauthorized" | "unavailable"
    reason: str = ""
    server_name: str = ""
    server_version: str = ""
    protocol_version: str = ""
    tools: int = 0
    resources: int = 0
    prompts: int = 0
    stderr_tail: list[str] = field(default_factory=list)
    seconds: float = 0.0


def check_all(targets: list[Target], timeout_s: float) -> list[Probe]:
    """Probe every target concurrently; each is bounded by timeout_s on its own, so a hung server
    never holds the others up (the results come back in the targets' order)."""
    import anyio

    _load_sdk({t.transport for t in targets})
    results: list[Probe | None] = [None] * len(targets)

    async def one(i: int, t: Target) -> None:
        results[i] = await probe(t, timeout_s)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for i, t in enumerate(targets):
                tg.start_soon(one, i, t)

    anyio.run(main)
    return [r for r in results if r is not None]


def _load_sdk(transports: set[str]) -> None:
    """Import what the transports need (the HTTP side alone costs about as much as the rest: a stdio
    check skips it), once, under a lock: `elfctl health` checks servers from several threads at once,
    and two threads importing `mcp` together see it half-initialised (an ImportError)."""
    import importlib

    wanted = ["mcp.client.session"]
    wanted += ["mcp.client.stdio"] if "stdio" in transports else []
    wanted += ["mcp.shared._httpx_utils", "mcp.client.streamable_http"] if "streamable-http" in transports else []
    wanted += ["mcp.shared._httpx_utils", "mcp.client.sse"] if "sse" in transports else []
    with _IMPORTING:
        for name in wanted:
            importlib.import_module(name)


async def probe(t: Target, timeout_s: float) -> Probe:
    import anyio

    started = time.perf_counter()
    out = Probe(t.name, "unavailable")
    statuses: list[int] = []
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog:
        try:
            with anyio.fail_after(timeout_s):
                async with _connect(t, errlog, statuses) as (read, write):
                    await _session(read, write, out)
            out.outcome = "ready"
        except TimeoutError:
            out.reason = f"no answer within {timeout_s:g}s (" + ("the handshake hung" if not out.protocol_version
                                                                 else "listing hung") + ")"
        except BaseException as exc:  # noqa: BLE001 (the SDK raises exception groups from its task groups)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            out.outcome, out.reason = _explain(t, _leaf(exc), statuses)
        if t.transport == "stdio" and out.outcome != "ready":
            errlog.flush()
            errlog.seek(0)
            out.stderr_tail = [ln.rstrip() for ln in errlog.read()[-4000:].splitlines() if ln.strip()][-5:]
    out.seconds = time.perf_counter() - started
    return out


def _connect(t: Target, errlog, statuses: list[int]):
    if t.transport == "stdio":
        from mcp.client.stdio import StdioServerParameters, stdio_client

        return stdio_client(StdioServerParameters(command=t.command, args=t.args, env=t.env), errlog=errlog)
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def seen(response) -> None:  # the SDK turns a 401 into a bare "error response": keep the status
        statuses.append(response.status_code)

    if t.transport == "sse":
        from mcp.client.sse import sse_client

        def factory(headers=None, timeout=None, auth=None):
            c = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth)
            c.event_hooks["response"].append(seen)
            return c

        return sse_client(t.url, headers=t.headers, httpx_client_factory=factory)
    from mcp.client.streamable_http import streamable_http_client

    client = create_mcp_http_client(headers=t.headers)
    client.event_hooks["response"].append(seen)
    return streamable_http_client(t.url, http_client=client)


async def _session(read, write, out: Probe) -> None:
    from mcp.client.session import ClientSession

    async with ClientSession(read, write) as s:
        init = await s.initialize()
        out.protocol_version = str(init.protocol_version)
        info = init.server_info
        out.server_name, out.server_version = info.name or "", info.version or ""
        caps = init.capabilities
        if caps.tools is not None:
            out.tools = len((await s.list_tools()).tools)
        if caps.resources is not None:
            out.resources = len((await s.list_resources()).resources)
        if caps.prompts is not None:
            out.prompts = len((await s.list_prompts()).prompts)


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _explain(t: Target, exc: BaseException, statuses: list[int]) -> tuple[str, str]:
    denied = [s for s in statuses if s in (401, 403)]
    if denied:
        return "unauthorized", f"the server answered HTTP {denied[-1]} on initialize: it needs credentials"
    name = type(exc).__name__
    if isinstance(exc, FileNotFoundError) or (isinstance(exc, OSError) and exc.errno == 2):
        return "unavailable", f"command {t.command!r} cannot start: not found"
    if isinstance(exc, PermissionError):
        return "unavailable", f"command {t.command!r} cannot start: not executable"
    if "ConnectError" in name or isinstance(exc, ConnectionError):
        return "unavailable", f"connection to {t.url} refused or unreachable"
    if "Timeout" in name:
        return "unavailable", "timed out"
    bad = [s for s in statuses if s >= 400]
    if bad:
        return "unavailable", f"the server answered HTTP {bad[-1]}"
    text = " ".join(str(exc).split())[:200]
    if t.transport == "stdio" and (name in ("McpError", "MCPError") or "Connection closed" in text or not text):
        return "unavailable", "the handshake failed: the server closed the connection" + (f" ({text})" if text else "")
    return "unavailable", f"the handshake failed: {name}: {text}" if text else f"the handshake failed: {name}"
