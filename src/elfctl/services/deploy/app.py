"""The deploy use cases as the CLI calls them: adapters and options gathered from the run's App,
then handed to services/deploy/flow.py (which stays free of configuration)."""

from __future__ import annotations

import os
import re

from elfctl.adapters import team_files as team_mod
from elfctl.domain.names import check_team_name
from elfctl.domain.secret import Secret
from elfctl.errors import InputError, StoreNotMigrated
from elfctl.redact import secret
from elfctl.services.deploy import flow as deploy_svc
from elfctl.services.deploy import k8s, mcp_hooks, registry_hooks
from elfctl.services.telemetry.settings import telemetry_env

CRED_TABLE = "credential_audit_head"  # the credential store's newest table (migration 0040)


def options(app, **given) -> deploy_svc.DeployOptions:
    cfg = app.config
    opts = deploy_svc.DeployOptions(
        timeout_s=cfg.get("deploy.timeout_s"),
        lock_wait_s=cfg.get("deploy.lock_wait_s"),
        lock_ttl_s=cfg.get("deploy.lock_ttl_s"),
        keep_images=cfg.get("deploy.keep_images"),
        soak_s=cfg.get("deploy.soak_s"),
        trace=app.telemetry,
        gateway_url=gateway_url(cfg),
    )
    for key, value in given.items():
        if value is not None:
            setattr(opts, key, value)
    return opts


def gateway_url(cfg, target: str | None = None) -> str:
    """The LLM gateway as the deploy target's teams reach it (gateway.url_in_teams, else by name)."""
    from elfctl.services.deploy.gateway_env import team_url

    override = cfg.get("gateway.url_in_teams")
    if override and not re.match(r"^https?://[^/\s:]+(:\d{1,5})?(/\S*)?$", override):
        raise InputError(f"gateway.url_in_teams {override!r} (from {cfg.source('gateway.url_in_teams')}) is not an "
                         f"http(s) URL", hint="set it like http://elfctl-gateway:18400/v1, or unset it")
    target = target or cfg.get("deploy.target")
    return team_url(target, cfg.get("gateway.port"),
                    k8s.kubernetes_namespace(cfg) if target == "kubernetes" else "", override)


def _gateway_keys_table(app, spec) -> None:
    """A team on the gateway needs the keys table (migration 0070) before anything is recorded."""
    if spec.llm.gateway and "gateway_keys" not in app.store.tables():
        raise StoreNotMigrated(f"store {app.store.display_url} has no gateway_keys table yet (team {spec.name} "
                               f"uses the LLM gateway)", hint="run `elfctl db migrate` (or `elfctl infra up`)")


def resolve_secrets(app, spec) -> dict[str, Secret]:
    """The values of the names a team lists under `secrets:`, for both deploy targets. Order, per
    name: the credential store in the team's scope, then the store's global scope, then an
    environment variable of the same name (for names the store does not hold). A name found
    nowhere is an error naming the team file, the field and the fix. Values stay `Secret`s (masked
    when printed); the target reveals them only to hand them to the engine."""
    if not spec.secrets:
        return {}
    from elfctl.services.credentials import vault as credentials
    from elfctl.services.credentials.app import vault_for

    names = list(spec.secrets)
    values: dict[str, Secret] = {}
    if CRED_TABLE in app.store.tables():  # a store not migrated yet holds no credentials
        values = credentials.resolve(
            vault_for(app, command=f"elfctl deploy {spec.name}"),
            names,
            team=spec.name,
            required=False,
            action="run",
        )
    for name in names:
        if name not in values and os.environ.get(name):
            values[name] = secret(os.environ[name])  # registers it for redaction
    missing = [n for n in names if n not in values]
    if missing:
        raise InputError(
            f"{spec.path}: secrets: {', '.join(missing)} has no value "
            f"(not in the credential store for team {spec.name} or globally, nor in the environment)",
            hint=f"store it: `elfctl creds set {missing[0]} --team {spec.name}` (or export {missing[0]})",
        )
    return {n: values[n] for n in names}


def secret_versions(app, spec) -> str:
    """Which stored credential versions a deploy injects, as "NAME@scope:vN,..." (metadata only, the
    scope resolve_secrets reads first). Part of the deploy's config key, so a rotated secret makes
    the next deploy roll out instead of answering `unchanged`. Environment values have no version."""
    if not spec.secrets or CRED_TABLE not in app.store.tables():
        return ""
    marks = []
    for name in spec.secrets:
        rows = app.store.query(
            "SELECT scope, version FROM credentials WHERE name = ? AND scope IN (?, '')", (name, spec.name)
        )
        row = next((r for r in rows if r["scope"] == spec.name), None) or (rows[0] if rows else None)
        if row:
            marks.append(f"{name}@{row['scope'] or 'global'}:v{row['version']}")
    return ",".join(sorted(marks))


def missing_secrets(app, specs) -> list[str]:
    """Names (never values) the teams list under `secrets:` that neither the credential store nor
    the environment holds. Metadata only: no passphrase, no decryption. A store that is not
    migrated yet counts as holding nothing; a store that cannot be read (unreachable, damaged)
    raises: calling every secret "missing" would send the user after the wrong problem."""
    wanted = {(s, spec.name) for spec in specs for s in spec.secrets if not os.environ.get(s)}
    if not wanted:
        return []
    held: set[tuple[str, str]] = set()
    if CRED_TABLE in app.store.tables():
        held = {(r["name"], r["scope"]) for r in app.store.query("SELECT name, scope FROM credentials")}
    return sorted({n for n, team in wanted if (n, team) not in held and (n, "") not in held})


def _store(app):
    store = app.store
    if "deployments" not in store.tables():
        raise StoreNotMigrated(
            f"store {store.display_url} has no deployments table yet",
            hint="run `elfctl infra up` (or `elfctl db migrate`) first",
        )
    return store


def _with_mcp(app, spec, secrets: dict, versions: str) -> tuple[dict, str]:
    """The team's mcpServers document joins its secrets (the Docker target writes it as a read-only
    file, the Kubernetes one as a Secret mounted as that file; its path in ELFCTL_MCP_CONFIG), and
    what it is made of joins the config key."""
    if not spec.mcp_servers:
        return secrets, versions
    return ({**secrets, **mcp_hooks.config_secret(app, spec)},
            ",".join(filter(None, [versions, mcp_hooks.config_mark(app, spec)])))


def deploy_team(app, name: str, ignore_deps: bool = False, **given) -> deploy_svc.DeployResult:
    spec = team_mod.find(app.teams_dir, name)
    _store(app)
    opts = options(app, **given)
    mcp_hooks.before_build(app, spec)
    dep_warnings = registry_hooks.check_dependencies(app, spec, ignore_deps)  # before anything is built
    if opts.dry_run:
        planned = deploy_svc.deploy(app.store, None, app.registry, app.target, spec, opts)
        planned.warnings += dep_warnings
        return planned
    _gateway_keys_table(app, spec)
    secrets, opts.secret_versions = _with_mcp(app, spec, resolve_secrets(app, spec), secret_versions(app, spec))
    app.docker.ping()  # Unreachable (exit 3) before anything is recorded
    app.registry.ping()
    result = deploy_svc.deploy(
        app.store, app.docker, app.registry, app.target, spec, opts, app.output.info, secrets=secrets,
        env=telemetry_env(app.config, spec),
    )
    result.warnings += dep_warnings + [w for w in [registry_hooks.register_team(app, spec, result)] if w]
    return result


def rollback_team(app, name: str, to: int | None, **given) -> deploy_svc.DeployResult:
    spec = team_mod.find(app.teams_dir, name)
    _store(app)
    _gateway_keys_table(app, spec)
    secrets, versions = _with_mcp(app, spec, resolve_secrets(app, spec), secret_versions(app, spec))
    app.docker.ping()
    result = deploy_svc.rollback(
        app.store,
        app.docker,
        app.registry,
        app.target,
        spec,
        to,
        options(app, secret_versions=versions, **given),
        app.output.info,
        secrets=secrets,
        env=telemetry_env(app.config, spec),
    )
    result.warnings += [w for w in [registry_hooks.register_team(app, spec, result)] if w]
    return result


def deployments(app, team: str | None, limit: int) -> list[dict]:
    if team is not None:
        check_team_name(team)
    store = _store(app)
    reconcile_history(app, team)
    return deploy_svc.history(store, team, limit)


def reconcile_history(app, team: str | None = None) -> None:
    """Settle the rows of deploys that stopped half-way against what serves (reconcile.py), for
    `deployments` and `infra up`. Only when there are such rows is the target asked; an unreachable
    one leaves them as they are, with a warning: the history is shown, not refused."""
    from elfctl.errors import ElfError
    from elfctl.services.deploy import reconcile

    store = app.store
    if not store.query(f"SELECT 1 AS x FROM deployments WHERE state IN ({reconcile.IN_PROGRESS_SQL}) LIMIT 1"):
        return
    try:
        lines = reconcile.settle_all(store, app.target, deploy_svc.who(), app.config.get("deploy.lock_ttl_s"), team)
    except ElfError as exc:
        app.output.warn(f"deploys that stopped half-way are not settled yet: {exc.message}")
        return
    for line in lines:
        app.output.info(line)


def logs(app, name: str, tail: int, follow: bool):
    team_mod.find(app.teams_dir, name)
    if app.target.serving(name) is None:
        raise InputError(f"team {name}: nothing is serving", hint=f"deploy it: `elfctl deploy {name}`")
    return app.target.logs(name, tail=tail, follow=follow)


# --- Kubernetes ------------------------------------------------------------------------------------


def remove_team(app, name: str, purge: bool = False, confirm=None):
    """`elfctl team rm` with the run's adapters (services/deploy/teams.py: remove)."""
    from elfctl.services.deploy import teams

    cfg = app.config
    removed = teams.remove(app.store, app.target, app.docker, app.registry, app.teams_dir, name, purge=purge,
                           confirm=confirm, lock_ttl_s=cfg.get("deploy.lock_ttl_s"),
                           lock_wait_s=cfg.get("deploy.lock_wait_s"))
    registry_hooks.forget_team(app, name)
    return removed


def render_team(app, team: str, image: str | None = None, revision: int = 0) -> k8s.Rendered:
    """`elfctl k8s render TEAM`: the manifests of one team with this project's settings."""

    spec = team_mod.find(app.teams_dir, team)
    cfg = app.config
    image = image or f"{cfg.get('kubernetes.registry') or 'localhost'}/{spec.name}:latest"
    pull = cfg.get("kubernetes.pull_secret") if cfg.get("kubernetes.registry") else None
    return k8s.render_team(spec, image, k8s.kubernetes_namespace(cfg), pull, cfg.get("kubernetes.version") or None,
                           revision, gateway_url(cfg, "kubernetes"))


def render_for_deploy(app, team: str, tag: str | None = None) -> k8s.Rendered:
    """`elfctl deploy TEAM --render`: the manifests of the image this deploy would ship (same
    repository and content tag), pinned by digest when the registry already holds it. Touches no
    cluster and builds nothing; an unreachable registry only leaves the image unpinned."""
    from elfctl.services.deploy import images

    spec = team_mod.find(app.teams_dir, team)
    repo = images.repository(app.registry.address, spec.name)
    tag = tag or f"c-{images.context_hash(spec)[:16]}"
    return render_team(app, team, image=k8s.pinned_image(app.registry, repo, tag, app.output.warn))


def kubernetes_probes(app) -> dict:
    """The cluster and each team, when the deploy target is Kubernetes (else nothing)."""
    if app.config.get("deploy.target") != "kubernetes":
        return {}
    return k8s.health_probes(app.target, [p.parent.name for p in team_mod.discover(app.teams_dir)])
