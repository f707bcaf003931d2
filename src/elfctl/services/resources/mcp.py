"""mcp_server: the registered MCP servers, each checked with the same handshake as `elfctl mcp check`
(services/mcp/check.py), bounded by the monitor's timeout: ready is healthy, needs-config warning,
unavailable critical. The handshake's time is the value, as a share of the timeout."""

from __future__ import annotations

from elfctl.services.resources.status import Reading, reading

_STATUS = {"ready": "healthy", "needs-config": "warning", "unavailable": "critical"}


def mcp_servers(limits: tuple[float, float], names: list[str], check, timeout_s: float) -> list[Reading]:
    """`check(names, timeout_s)` -> the verdicts of services/mcp/check.check."""
    if not names:
        return [Reading("mcp_server", "-", "not_configured", detail="no MCP server registered (`elfctl mcp add`)")]
    out = []
    for v in check(names, timeout_s):
        if v.verdict == "ready":
            r = reading("mcp_server", v.name, v.seconds / timeout_s * 100, limits,
                        f"{v.server.get('name', '?')} ready in {v.seconds * 1000:.0f} ms, "
                        f"{v.counts.get('tools', 0)} tools", latency_ms=round(v.seconds * 1000, 1))
        else:
            r = Reading("mcp_server", v.name, _STATUS.get(v.verdict, "unknown"), detail=f"{v.verdict}: {v.reason}")
        out.append(r)
    return out
