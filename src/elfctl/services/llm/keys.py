"""Provider API keys (`openai`, `anthropic`, ...): the one place that reads them for a call.

Order: the environment variable (what litellm itself reads); else the credential store, the team's
own key first, then the global one. The store is read once per (variable, team) for the life of a
`ProviderKeys` (one per process runtime), negative answers too: no key derivation, lock or audit
entry per call."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from elfctl.domain.llm_providers import key_var
from elfctl.domain.names import is_dns_label
from elfctl.domain.secret import Secret
from elfctl.ports import Store
from elfctl.redact import register_secret


class ProviderKeys:
    """`keys(provider, team)` -> the key or None; the Caller's `key_for`. `vault(command)` builds
    the credential Vault the store is read through (audited under `command`)."""

    def __init__(self, store: Store, vault: Callable[[str], Any]):
        self.store = store
        self.vault = vault
        self._stored: dict[tuple[str, str], Secret | None] = {}

    def __call__(self, provider: str, team: str | None = None) -> str | None:
        var = key_var(provider)
        value = os.environ.get(var)
        if value:
            register_secret(value)
            return value
        if (var, team or "") not in self._stored:
            self._stored[(var, team or "")] = self.stored(var, team)
        stored = self._stored[(var, team or "")]
        return stored.reveal() if stored is not None else None

    def stored(self, var: str, team: str | None) -> Secret | None:
        """The key from the credential store (team scope, then global) as a Secret, or None when the
        store holds none (or has no credential tables yet). Audited as a read."""
        from elfctl.services.credentials import vault as credentials

        if "credentials" not in self.store.tables():
            return None
        if team and not is_dns_label(team):
            team = None  # not a team the store can scope by: the global key only
        vault = self.vault(f"elfctl.llm {var}")
        return credentials.resolve(vault, [var], team=team, required=False).get(var)
