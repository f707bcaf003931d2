"""Credentials from the run's App: the Vault the use cases in vault.py take, and `resolve` for
library callers that hold an App."""

from __future__ import annotations

from collections.abc import Callable

from elfctl.domain.secret import Secret
from elfctl.services.credentials.vault import Vault
from elfctl.services.credentials.vault import resolve as resolve_in


def vault_for(app, prompt: Callable[[bool], str | None] | None = None,
              command: str = "elfctl (library)") -> Vault:
    """`prompt(new_file)` asks for the file passphrase (the CLI passes a terminal prompt); `command`
    is what the audit trail records as the actor's command. Built by the composition root."""
    return app.vault(command, prompt)


def resolve(app, names: list[str], team: str | None = None, *, required: bool = True,
            action: str = "read") -> dict[str, Secret]:
    """Library entry point: vault.resolve with the run's App (see there)."""
    return resolve_in(vault_for(app, command="elfctl library resolve"), names, team,
                      required=required, action=action)

