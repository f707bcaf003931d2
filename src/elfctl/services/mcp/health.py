"""`elfctl health`'s `mcp:<name>` components: one handshake per declared server within the health
timeout (the same check as `elfctl mcp check`, its verdict kept in the registry)."""

from __future__ import annotations

from elfctl.domain.health import Check
from elfctl.services.mcp import check as checks
from elfctl.services.mcp import servers

_STATUS = {checks.READY: "pass", checks.NEEDS_CONFIG: "warn", checks.UNAVAILABLE: "fail"}


def _declared(app, timeout_s: float) -> list[str]:
    """The declared servers' names, waited for at most the health timeout: a store that does not
    answer (or fails) is the store component's failure, not a reason to hold every other check up."""
    from elfctl.services.platform.health import run_concurrently

    got, _ms = run_concurrently({"servers": lambda: [e.name for e in servers.list_(app.store)]}, timeout_s)["servers"]
    return got if isinstance(got, list) else []


def mcp_probes(app, timeout_s: float) -> dict:
    """{"mcp:<name>": probe}; none when the store cannot list them (the store component says why)."""
    names = _declared(app, timeout_s)
    from elfctl.services.mcp.app import resolver

    def probe(name: str) -> Check:
        # a little under the health timeout, so the verdict (with the server's stderr) is what shows
        v = checks.check(app.store, resolver(app, command="elfctl health"), [name], max(0.5, timeout_s * 0.9),
                         actor="health probe")[0]
        c = f"mcp:{name}"
        if v.verdict == checks.READY:
            return Check(c, "pass", v.counts["tools"], "tools",
                         output=f"{v.server['name']} {v.server['version']} protocol {v.server['protocol_version']}")
        out = v.reason + (f" (stderr: {v.stderr[-1]})" if v.stderr else "")
        return Check(c, _STATUS[v.verdict], output=out, hint=f"`elfctl mcp check {name}`")

    return {f"mcp:{n}": (lambda n=n: probe(n)) for n in names}
