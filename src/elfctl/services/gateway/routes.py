"""The gateway's route table: modules add their routes here, the server dispatches through it.

    ROUTES: list[Route]          # Route(method, pattern, handler, public=False), a 4-field NamedTuple

A module adds routes by appending to ROUTES (or with the `route` decorator) at import time. The
server imports every module of the package `elfctl.services.gateway.endpoints` when it starts, so a
capability adds its HTTP API by dropping a module there (e.g. `endpoints/registry.py`), editing no
other file.

Patterns are exact paths or have `{name}` segments (`/teams/{name}/.well-known/agent-card.json`):
a `{name}` matches one non-empty path segment and arrives in `request.params["name"]`.

Handler contract:
  - `handler(request: Request) -> (status: int, headers: dict[str, str], body)`, a plain function
    (run on the gateway's worker threads, so it may block on the store or a provider) or an
    `async def` (run on the event loop: it must not block).
  - `request.key` is the caller's `keys.Key` (its team and revision) on authenticated routes; the
    server has already refused (401) a request without a live key. On `public=True` routes it is
    None. The team a handler acts for comes from `request.key.team`, never from the body.
  - `body` is a dict or list (sent as JSON), bytes or str (sent as is; set `content-type`), or an
    async iterator of bytes (streamed as they come, e.g. server-sent events). A sync handler may
    return one too: it is iterated on the event loop. When the client goes away mid-stream, the
    iteration is cancelled where it waits and the iterator closed (`aclose()`), so an async
    generator's `finally` runs: the place to record what was generated.
  - A plain handler may instead return an awaitable that gives that triple: its blocking work done on
    the thread, the rest (e.g. a provider's answer over an asyncio connection) is awaited on the event
    loop; what it raises is answered as what the handler raises.
  - To refuse, raise `errors.ApiError(status, message, ...)`: the client gets the OpenAI-shaped
    `{"error": {"message", "type", "code", "param"}}` with that status. An ElfError from a service is
    mapped the same way (errors.from_elf); any other exception is a 500 with no detail (logged).
  - `request.gateway` is the server's `app.Gateway` (config, store, the LLM Caller, ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from elfctl.services.gateway.errors import ApiError


class Route(NamedTuple):
    method: str
    pattern: str
    handler: Callable[..., Any]
    public: bool = False


ROUTES: list[Route] = []


def route(method: str, pattern: str, public: bool = False):
    """Decorator: add the function to ROUTES."""

    def add(fn):
        ROUTES.append(Route(method.upper(), pattern, fn, public))
        return fn

    return add


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes = b""
    query: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    key: Any = None  # keys.Key on authenticated routes, None on public ones
    gateway: Any = None  # app.Gateway
    client: str | None = None  # the peer's address

    def json(self) -> Any:
        """The body as JSON, or the 400 a client gets for a body that is not."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None


class Table:
    """ROUTES compiled for dispatch: exact paths by dict, `{name}` patterns by regex."""

    def __init__(self, routes: list[Route]):
        self.exact: dict[tuple[str, str], Route] = {}
        self.patterns: list[tuple[str, re.Pattern, Route]] = []
        self.paths: set[str] = set()
        for r in routes:
            if "{" in r.pattern:
                rx = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(r.pattern))
                self.patterns.append((r.method, re.compile(rx + "$"), r))
            else:
                self.exact[(r.method, r.pattern)] = r
                self.paths.add(r.pattern)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route and its path parameters; ApiError 404 (no such path) or 405 (wrong method)."""
        hit = self.exact.get((method, path))
        if hit is not None:
            return hit, {}
        allowed = path in self.paths
        for m, rx, r in self.patterns:
            found = rx.match(path)
            if found:
                if m == method:
                    return r, found.groupdict()
                allowed = True
        if allowed:
            raise ApiError(405, f"{method} is not allowed on {path}", code="method_not_allowed")
        raise ApiError(404, f"no such endpoint: {method} {path}", type="invalid_request_error",
                       code="unknown_url")
