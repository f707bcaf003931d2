"""The deploy use cases as the CLI calls them: adapters and options gathered from the run's App,
then handed to services/deploy.py (which stays free of configuration)."""

from __future__ import annotations

import os

from elfctl.domain import team as team_mod
from elfctl.errors import InputError
from elfctl.redact import register_secret
from elfctl.services import deploy as deploy_svc


def options(app, **given) -> deploy_svc.DeployOptions:
    cfg = app.config
    opts = deploy_svc.DeployOptions(
        timeout_s=cfg.get("deploy.timeout_s"),
        lock_wait_s=cfg.get("deploy.lock_wait_s"),
        lock_ttl_s=cfg.get("deploy.lock_ttl_s"),
        keep_images=cfg.get("deploy.keep_images"),
    )
    for key, value in given.items():
        if value is not None:
            setattr(opts, key, value)
    return opts


def resolve_secrets(spec) -> dict[str, str]:
    """Secret values by name. Until the credential store serves them, they come from environment
    variables of the same name; a missing one is an error naming the team file and the field."""
    values = {}
    for name in spec.secrets:
        value = os.environ.get(name)
        if value is None:
            raise InputError(
                f"{spec.path}: secrets: {name} has no value",
                hint=f"export {name} in the environment that runs `elfctl deploy`",
            )
        register_secret(value)
        values[name] = value
    return values


def _store(app):
    store = app.store
    if "deployments" not in store.tables():
        raise InputError(
            f"store {store.display_url} has no deployments table yet",
            hint="run `elfctl infra up` (or `elfctl db migrate`) first",
        )
    return store


def deploy_team(app, name: str, **given) -> deploy_svc.DeployResult:
    spec = team_mod.find(app.teams_dir, name)
    _store(app)
    opts = options(app, **given)
    if opts.dry_run:
        return deploy_svc.deploy(app.store, None, app.registry, app.target, spec, opts)
    secrets = resolve_secrets(spec)
    app.docker.ping()  # Unreachable (exit 3) before anything is recorded
    app.registry.ping()
    return deploy_svc.deploy(
        app.store, app.docker, app.registry, app.target, spec, opts, app.output.info, secrets=secrets
    )


def rollback_team(app, name: str, to: int | None, **given) -> deploy_svc.DeployResult:
    spec = team_mod.find(app.teams_dir, name)
    _store(app)
    secrets = resolve_secrets(spec)
    app.docker.ping()
    return deploy_svc.rollback(
        app.store,
        app.docker,
        app.registry,
        app.target,
        spec,
        to,
        options(app, **given),
        app.output.info,
        secrets=secrets,
    )


def deployments(app, team: str | None, limit: int) -> list[dict]:
    if team is not None and not team_mod.DNS1123.match(team):
        raise InputError(
            f"team name {team!r} is not a DNS-1123 label", hint="use lower case letters, digits and '-'"
        )
    return deploy_svc.history(_store(app), team, limit)


def logs(app, name: str, tail: int, follow: bool):
    team_mod.find(app.teams_dir, name)
    if app.target.serving(name) is None:
        raise InputError(f"team {name}: nothing is serving", hint=f"deploy it: `elfctl deploy {name}`")
    return app.target.logs(name, tail=tail, follow=follow)
