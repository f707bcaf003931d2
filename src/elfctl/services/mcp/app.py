"""The MCP use cases with the run's App: the credential store read only when a server names a secret."""

from __future__ import annotations

from elfctl.services.mcp import check as checks

DEFAULT_TIMEOUT_S = 10.0  # a cold `npx -y` or `uvx` start downloads first


def resolver(app, prompt=None, command: str = "elfctl mcp check"):
    """resolve(names, team) -> {name: Secret} for the names that are set (each read audited)."""
    def resolve(names: list[str], team: str | None = None):
        from elfctl.services.credentials.app import vault_for
        from elfctl.services.credentials.vault import resolve as resolve_in

        return resolve_in(vault_for(app, prompt, command=command), names, team, required=False, action="mcp")
    return resolve


def check(app, names: list[str] | None, timeout_s: float | None = None, prompt=None) -> list[checks.Verdict]:
    return checks.check(app.store, resolver(app, prompt), names, DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s)
