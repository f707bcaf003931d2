"""One GET of a health URL with a deadline over the whole exchange, for probers that run many at once
on one event loop: a server that accepts and never answers, or trickles its answer a byte at a time,
costs the caller `timeout_s` and no more (urllib's timeout applies to each read, so a trickle holds
it for as long as the trickle lasts). HTTP/1.0 with `Connection: close`: the body is whatever comes
before the server closes, at most 64 KiB (a health answer is small). Only plain http:// URLs: the
platform's own teams serve that on its network."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

from elfctl.domain.health_gate import classify

MAX_BODY = 65536


class Unresolved(Exception):
    """The URL's host name does not resolve from here (e.g. a Docker network name seen from the host)."""


async def probe(url: str, timeout_s: float) -> tuple[str, str]:
    """(pass | warn | fail, reason) of one GET of `url` within `timeout_s` overall. Unresolved
    when its host name is unknown here: the caller may try another of the entry's endpoints."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return "fail", f"cannot probe {url!r}: only http:// URLs are probed"
    try:
        status, body = await asyncio.wait_for(_get(parts, timeout_s), timeout_s)
    except TimeoutError:
        return "fail", f"no answer within {timeout_s:g}s"
    except socket.gaierror as exc:
        raise Unresolved(f"{parts.hostname}: {exc.strerror or exc}") from None
    except (OSError, ValueError) as exc:
        return "fail", f"no answer ({getattr(exc, 'strerror', None) or exc})"
    return classify(status, body)


async def _get(parts, timeout_s: float) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\nUser-Agent: elfctl-probe\r\n"
                     "Accept: application/health+json, application/json\r\nConnection: close\r\n\r\n".encode("latin-1"))
        await writer.drain()
        raw = await reader.read(MAX_BODY + 8192)
        while raw and len(raw) < MAX_BODY + 8192:
            more = await reader.read(MAX_BODY + 8192 - len(raw))
            if not more:
                break
            raw += more
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/") or not status_line[1].isdigit():
        raise ValueError("not an HTTP answer")
    return int(status_line[1]), body[:MAX_BODY]
