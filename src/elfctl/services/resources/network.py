"""network: the registry, the LLM providers' endpoints and the gateway: reachable, and the
connection's latency as a share of the monitor's timeout (a latency near the timeout is about to
look like an outage). Only endpoints this project names are checked; offline machines stay quiet."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from elfctl.services.resources.status import Reading, reading


def _connect(host: str, port: int, timeout_s: float) -> float:
    t0 = time.perf_counter()
    socket.create_connection((host, port), timeout=timeout_s).close()
    return (time.perf_counter() - t0) * 1000


def endpoint(url_or_address: str) -> tuple[str, int] | None:
    """host, port of `https://h[:p]/...` or `h:p` (None when it names no host)."""
    text = url_or_address if "://" in url_or_address else f"http://{url_or_address}"
    try:
        parts = urlsplit(text)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname else None


def network(limits: tuple[float, float], endpoints: dict[str, str], timeout_s: float) -> list[Reading]:
    """endpoints: subject -> URL or host:port ("registry", "gateway", "provider:openai")."""
    if not endpoints:
        return [Reading("network", "-", "not_configured",
                        detail="no registry, gateway or provider base URL (OPENAI_API_BASE ...) in use")]
    out = []
    for subject, where in endpoints.items():
        found = endpoint(where)
        if found is None:
            out.append(Reading("network", subject, "unknown", detail=f"{where!r} names no host"))
            continue
        try:
            ms = _connect(*found, timeout_s)
        except OSError as exc:
            out.append(Reading("network", subject, "critical",
                               detail=f"{found[0]}:{found[1]} unreachable: {exc.strerror or exc}"))
            continue
        out.append(reading("network", subject, ms / (timeout_s * 1000) * 100, limits,
                           f"{found[0]}:{found[1]} reachable in {ms:.1f} ms", latency_ms=round(ms, 1)))
    return out
