"""Credentials from the run's App: the Vault the use cases in vault.py take, and `resolve` for
library callers that hold an App."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable

from elfctl.domain import credentials as rules
from elfctl.domain.secret import Secret
from elfctl.services.credentials import audit
from elfctl.services.credentials.vault import Vault
from elfctl.services.credentials.vault import resolve as resolve_in


def vault_for(app, prompt: Callable[[bool], str | None] | None = None,
              command: str = "elfctl (library)") -> Vault:
    """`prompt(new_file)` asks for the file passphrase (the CLI passes a terminal prompt); `command`
    is what the audit trail records as the actor's command."""
    from elfctl import bootstrap

    cfg = app.config
    max_age = cfg.get("creds.max_age")
    chosen: list[str] = []

    def default_backend() -> str:
        if not chosen:
            chosen.append(bootstrap.default_secrets_backend(cfg))
        return chosen[0]

    return Vault(
        app.store,
        lambda name: bootstrap.open_secrets(cfg, name, prompt),
        default_backend,
        grace=rules.parse_duration(cfg.get("creds.grace_period"), "creds.grace_period"),
        max_age=rules.parse_duration(max_age, "creds.max_age") if max_age else None,
        warn_before=rules.parse_duration(cfg.get("creds.warn_before"), "creds.warn_before"),
        actor=audit.Actor(_os_user(), socket.gethostname(), command),
        teams_dir=app.teams_dir,
        lock_timeout_s=cfg.get("store.lock_timeout_s"),
    )


def resolve(app, names: list[str], team: str | None = None, *, required: bool = True,
            action: str = "read") -> dict[str, Secret]:
    """Library entry point: vault.resolve with the run's App (see there)."""
    return resolve_in(vault_for(app, command="elfctl library resolve"), names, team,
                      required=required, action=action)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 (no passwd entry in some containers)
        return str(os.getuid())
