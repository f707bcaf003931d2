"""`creds run`: a command with the secrets in its environment, like `op run` or `doppler run`, so
no `.env` file is ever written. With a team: its own secrets plus the global ones its team.yaml
lists under `secrets:`."""

from __future__ import annotations

import os
import subprocess

from elfctl.domain import credentials as rules
from elfctl.domain.secret import Secret
from elfctl.errors import InputError
from elfctl.services.credentials.vault import Vault, read_many


def run_env(vault: Vault, team: str | None = None) -> dict[str, Secret]:
    """The secrets `creds run` injects: all global ones; with a team, the team's own plus the global
    names its team.yaml lists under `secrets:` (team values win)."""
    scope = rules.check_team(team)
    vault.require_schema()
    rows = vault.store.query("SELECT name, scope FROM credentials WHERE scope = ?", (scope,))
    wanted = [(r["name"], scope) for r in rows]
    if scope:
        allowed = _team_allowed_globals(vault, scope)
        own = {n for n, _ in wanted}
        wanted += [(n, "") for n in allowed if n not in own]
    got = read_many(vault, wanted, action="run")
    return {n: v for (n, _s), v in got.items()}


def _team_allowed_globals(vault: Vault, team: str) -> list[str]:
    if vault.teams_dir is None or not (vault.teams_dir / team / "team.yaml").is_file():
        return []
    from elfctl.adapters import team_files as team_spec

    return list(team_spec.load(vault.teams_dir / team / "team.yaml").secrets)


def run(vault: Vault, argv: list[str], team: str | None = None) -> int:
    """Run argv with the secrets in its environment; returns its exit code. Nothing is written."""
    if not argv:
        raise InputError("no command to run", hint="elfctl creds run [--team T] -- COMMAND [ARGS...]")
    env = {**os.environ, **{k: v.reveal() for k, v in run_env(vault, team).items()}}
    try:
        return subprocess.call(argv, env=env)
    except FileNotFoundError:
        raise InputError(f"command not found: {argv[0]}", hint="check the command after `--`") from None
    except PermissionError:
        raise InputError(f"cannot execute {argv[0]} (permission denied)", hint="make it executable") from None
    except KeyboardInterrupt:
        return 130
