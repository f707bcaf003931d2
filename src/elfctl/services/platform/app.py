"""Platform-wide use cases that gather their adapters from the run's App: the health report and
`infra up`. Each feature adds its probe and its step here, in the order a user expects."""

from __future__ import annotations

from elfctl.domain.health import Check, HealthReport
from elfctl.errors import InputError, StoreNotMigrated
from elfctl.services.deploy.app import kubernetes_probes
from elfctl.services.platform import health as health_svc
from elfctl.services.platform import infra as infra_svc
from elfctl.services.platform import migrate as migrate_svc


def health_probes(app, deep: bool = False, timeout_s: float | None = None) -> dict[str, health_svc.Probe]:
    from elfctl.services.llm.app import provider_plan, provider_probes

    llm_plan = provider_plan(app)  # the providers the teams' LLM policies name
    llm_providers = provider_probes(app, llm_plan, deep=deep, timeout_s=timeout_s)
    return {
        "store": health_svc.store_probe(lambda: app.store, app.migrations_dir),
        # docker, registry, team:<name> (when the project runs teams)
        **_docker_probes(app, timeout_s or app.config.get("health.timeout_s")),
        "disk": health_svc.disk_probe(app.config.root, app.config.get("health.disk_warn_free"),
                                      app.config.get("health.disk_fail_free")),
        "memory": health_svc.memory_probe(app.config.get("health.memory_warn_free"),
                                          app.config.get("health.memory_fail_free")),
        "creds": _credentials_probe(app),
        "llm": _llm_probe(app, llm_plan.models),
        **llm_providers,
        "budgets": _budget_probe(app),
        "service-registry": _registry_probe(app),
        **_mcp_probes(app, timeout_s),
        **kubernetes_probes(app),
        **_resource_probes(app),
        **_telemetry_probes(app),
        **_notify_probes(app),
        **_gateway_probes(app),
    }


def _resource_probes(app) -> dict[str, health_svc.Probe]:
    from elfctl.services.resources.app import health_probes

    return health_probes(app)


def _telemetry_probes(app) -> dict[str, health_svc.Probe]:
    """`telemetry` (collector reachable, spans dropped by any process), only when telemetry is on."""
    from elfctl.services.telemetry import settings as tel
    from elfctl.services.telemetry.health import telemetry_probe

    s = tel.from_config(app.config)
    return {"telemetry": telemetry_probe(s, lambda: app.store)} if s.enabled else {}


def _notify_probes(app) -> dict[str, health_svc.Probe]:
    """`notify` only where alert channels are configured (nothing to say otherwise)."""
    if not (app.config.get("notify.slack_webhook_url") or app.config.get("notify.webhooks")):
        return {}

    def probe() -> Check:
        from elfctl.services.notify import app as notify
        from elfctl.services.notify import health as notify_health

        try:
            count = len(notify.channels(app))
        except InputError as exc:
            return Check("notify", "fail", output=exc.message, hint=exc.hint)
        return notify_health.check(app.store, count)

    return {"notify": probe}


def _gateway_probes(app) -> dict[str, health_svc.Probe]:
    """The LLM gateway, where the project runs teams (services/platform/gateway_health.py)."""
    from elfctl.services.deploy.gateway_env import NAME, docker_name
    from elfctl.services.platform import gateway_health

    cfg = app.config
    if cfg.get("deploy.target") == "kubernetes":
        return {"gateway": gateway_health.kubernetes_probe(app.target, NAME)}
    if not _runs_containers(app):
        return {}
    name = docker_name(cfg.get("deploy.prefix"))
    url = gateway_health.health_url(cfg.get("gateway.host"), cfg.get("gateway.port"))
    return {"gateway": gateway_health.docker_probe(
        url, lambda: f"container {name}" if app.docker.inspect(name) else None)}


def _llm_probe(app, covered: set[str] = frozenset()) -> health_svc.Probe:
    from elfctl.services.llm.health import llm_probe

    return llm_probe(lambda: app.store, covered)


def _registry_probe(app) -> health_svc.Probe:
    from elfctl.services.registry.health import registry_probe

    return registry_probe(app)


def _mcp_probes(app, timeout_s: float | None) -> dict[str, health_svc.Probe]:
    from elfctl.services.mcp.health import mcp_probes

    return mcp_probes(app, timeout_s or app.config.get("health.timeout_s"))


def _budget_probe(app) -> health_svc.Probe:
    from elfctl.services.cost.budget_health import budget_probe

    return budget_probe(lambda: app.store, app.teams_dir)


def _credentials_probe(app) -> health_svc.Probe:
    def probe() -> Check:
        from elfctl.services.credentials import checks as credential_checks
        from elfctl.services.credentials.app import vault_for

        if app.store.dialect == "rest":  # credentials need SQL by design: not checked, not failing the platform
            from elfctl.adapters.supabase_rest import DB_URL_HINT

            return Check(credential_checks.COMPONENT, "warn", output="not checked: credentials need a database "
                         "connection, and only the REST API (SUPABASE_URL/SUPABASE_KEY) is set", hint=DB_URL_HINT)

        return credential_checks.health_check(vault_for(app, command="elfctl health"))

    return probe


def health_report(app, components: list[str] | None = None, timeout_s: float | None = None,
                  deep: bool = False) -> HealthReport:
    probes = health_probes(app, deep=deep, timeout_s=timeout_s)
    if components:
        unknown = [c for c in components if c not in probes]
        if unknown:
            raise InputError(f"--component {unknown[0]}: no such component",
                             hint=f"components: {', '.join(probes)}")
        probes = {k: v for k, v in probes.items() if k in components}
    return health_svc.run_checks(probes, timeout_s or app.config.get("health.timeout_s"))


def infra_steps(app) -> list[infra_svc.Step]:
    def migrate_step():
        if app.store.dialect == "rest":  # no SQL over REST: the schema is checked, migrating needs SUPABASE_DB_URL
            st = migrate_svc.status(app.store, app.migrations_dir)
            if st.pending:
                from elfctl.adapters.supabase_rest import MIGRATE_HINT

                raise StoreNotMigrated(f"the Supabase project is at schema version {st.current_version}, "
                                       f"{st.pending} migration(s) up to {st.latest_version} pending",
                                       hint=MIGRATE_HINT)
            return False, f"schema current at version {st.current_version} (Supabase REST API)"
        r = migrate_svc.migrate(app.store, app.migrations_dir,
                                lock_timeout_s=app.config.get("store.lock_timeout_s"))
        if r.applied:
            return True, f"applied {len(r.applied)} migration(s), now at {r.current_version}"
        return False, f"schema current at version {r.current_version}"

    steps = [
        infra_svc.Step("store", "migrate the store to the newest schema", migrate_step),
    ]
    # environment, registry, target, teams: only when the project has teams or a registry.
    docker_steps = _docker_steps(app)
    return docker_steps[:1] + steps + docker_steps[1:]


def infra_up(app, dry_run: bool = False, only: list[str] = (), skip: list[str] = ()) -> infra_svc.UpResult:
    result = infra_svc.UpResult(dry_run=dry_run)
    result.steps = infra_svc.run_steps(infra_steps(app), dry_run, list(only), list(skip), app.output.info)
    if not dry_run:
        result.health = health_report(app)
    return result


def infra_status(app):
    from elfctl.services.platform import docker as docker_platform

    cfg = app.config
    return docker_platform.status(lambda: app.store, lambda: app.docker, lambda: app.registry, lambda: app.target,
                                  cfg.get("deploy.target"), cfg.get("deploy.network"), _runs_containers(app),
                                  app.teams_dir)


def infra_down(app, purge: bool = False):
    from elfctl.services.deploy import registry_hooks
    from elfctl.services.deploy.gateway_env import docker_name
    from elfctl.services.platform import docker as docker_platform
    from elfctl.services.platform import gateway as gateway_svc

    cfg = app.config
    prefix = cfg.get("deploy.prefix")
    stopped = []  # the gateway first: it holds the network a purge removes
    if cfg.get("deploy.target") == "kubernetes":
        if gateway_svc.kubernetes_down(app.target):
            stopped.append(f"gateway Deployment {gateway_svc.ALIAS}")
    elif gateway_svc.docker_down(app.docker, docker_name(prefix)):
        stopped.append(f"gateway {docker_name(prefix)}")
    result = docker_platform.down(app.docker, app.registry, lambda: app.target, lambda: app.store,
                                  _registry_settings(app), cfg.get("deploy.network"), purge)
    result.stopped[:0] = stopped
    registry_hooks.forget_stopped(app, result.stopped)
    if purge:
        result.removed += gateway_svc.remove_images(app.docker, f"{prefix}/gateway")
    return result


# --- the Docker side: engine, registry, deploy target, teams ----------------------------------------


def _runs_containers(app) -> bool:
    from elfctl.services.platform import docker as docker_platform

    return docker_platform.in_use(app.teams_dir, app.config.get("registry.url"))


def _registry_settings(app):
    from elfctl.services.platform.docker import RegistrySettings

    cfg = app.config
    return RegistrySettings(cfg.get("registry.url"), cfg.get("registry.container"), cfg.get("registry.image"),
                            cfg.get("registry.volume"), cfg.get("registry.port"))


def _docker_steps(app) -> list[infra_svc.Step]:
    from elfctl.adapters import team_files as team_mod
    from elfctl.services.deploy.app import deploy_team, missing_secrets, reconcile_history
    from elfctl.services.platform import docker as docker_platform

    if not _runs_containers(app):
        return []
    cfg = app.config

    def specs() -> list:
        return [team_mod.load(p) for p in team_mod.discover(app.teams_dir)]

    def environment():
        autostart = lambda: docker_platform.autostart_docker(  # noqa: E731
            cfg.get("docker.host"), cfg.get("docker.autostart"), cfg.elf_dir)
        return docker_platform.environment_step(app.docker, autostart, lambda: missing_secrets(app, specs()))

    def teams():
        from elfctl.services.deploy.registry_hooks import in_dependency_order

        names = [s.name for s in in_dependency_order(specs())]  # all read before the first deploy; needed first
        reconcile_history(app)  # also teams whose folder is gone: their history told true
        return docker_platform.teams_step(names, lambda team: deploy_team(app, team), app.target,
                                          cfg.get("deploy.publish_address"))

    return [
        infra_svc.Step("environment", "check Docker (start it if installed) and the teams' credentials by name",
                       environment),
        infra_svc.Step("registry", "check the external registry, or start the local registry container",
                       lambda: docker_platform.registry_step(app.docker, app.registry, _registry_settings(app))),
        infra_svc.Step("target", docker_platform.target_plan(cfg.get("deploy.target"), app.target),
                       lambda: app.target.prepare()),
        infra_svc.Step("gateway", _gateway_plan(app), lambda: _gateway_step(app)),
        infra_svc.Step("teams", "deploy every team in teams/ (unchanged teams are left alone)", teams),
    ]


# --- the LLM gateway: the platform's own service (services/platform/gateway.py) -----------------------


def _gateway_plan(app) -> str:
    cfg = app.config
    if cfg.get("deploy.target") == "kubernetes":
        return (f"run the LLM gateway: Deployment ({cfg.get('gateway.replicas')} replicas) and Service "
                f"elfctl-gateway on port {cfg.get('gateway.port')} (needs a Postgres store)")
    return (f"run the LLM gateway: container {cfg.get('deploy.prefix')}-gateway (alias elfctl-gateway) on network "
            f"{cfg.get('deploy.network')}, http://{cfg.get('gateway.host')}:{cfg.get('gateway.port')} "
            "(image built when elfctl or its dependencies changed)")


def _gateway_step(app) -> tuple[bool, str]:
    from elfctl.adapters.local_images import MANAGED
    from elfctl.services.platform import gateway as gateway_svc

    cfg = app.config
    gw = _gateway_settings(app)
    if cfg.get("deploy.target") == "kubernetes":
        return gateway_svc.kubernetes_step(app.target, gw, lambda: _pushed_gateway_image(app))
    return gateway_svc.docker_step(app.docker, gw, lambda: _gateway_image(app),
                                   {**MANAGED, "elfctl.prefix": cfg.get("deploy.prefix")})


def _pushed_gateway_image(app) -> tuple[bool, str, str]:
    """The gateway image in the registry the cluster pulls from, pinned by digest."""
    from elfctl.domain.k8s_manifests import pin_image

    made, details, ref = _gateway_image(app)
    repo, tag = ref.rsplit(":", 1)
    remote = f"{app.config.get('kubernetes.registry') or app.registry.address}/{repo}"
    app.docker.tag(ref, remote, tag)
    digest = app.docker.push(remote, tag)
    return made, f"{details}; pushed {remote}:{tag}", pin_image(f"{remote}:{tag}", digest)


def _gateway_image(app) -> tuple[bool, str, str]:
    from elfctl.adapters.local_images import PYTHON_REF, ensure_gateway_image, ensure_python_image

    cfg = app.config
    made_py, py_details = ensure_python_image(app.docker, cfg.get("deploy.python_image"))
    made, details, ref = ensure_gateway_image(app.docker, PYTHON_REF, _wheel_cache(),
                                              repo=f"{cfg.get('deploy.prefix')}/gateway")
    notes = ([py_details] if made_py else []) + [details]
    return made_py or made, "; ".join(notes), ref


def _wheel_cache():
    """Wheels are immutable by name and version: one cache for every project of this user."""
    import os
    from pathlib import Path

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "elfctl" / "wheels"


def _gateway_settings(app):
    import os

    from elfctl.config import SCHEMA
    from elfctl.services.deploy.gateway_env import docker_name
    from elfctl.services.llm.keys import ProviderKeys
    from elfctl.services.platform import gateway as gateway_svc

    cfg = app.config
    target = cfg.get("deploy.target")
    env, secret, volumes, notes = gateway_svc.store_access(
        cfg.store_url, cfg.root, cfg.elf_dir, target, rest_key=cfg.get("supabase.key"),
        ca_file=cfg.path("supabase.ca_file") if cfg.get("supabase.ca_file") else None)
    values = {k: cfg.get(k) for k in SCHEMA if k.startswith(("llm.", "gateway.", "discovery.")) and k != "gateway.host"}
    keys = ProviderKeys(app.store, app.vault)
    providers = [p.name for p in _provider_plan(app).providers]
    provider_env, keyless = gateway_svc.provider_env(providers, keys, dict(os.environ))
    if keyless:
        notes.append(f"no provider key configured for {', '.join(p for p, _ in keyless)}: their calls fail "
                     f"until `elfctl creds set {keyless[0][1]}`, then `elfctl infra up`")
    read_only, user = {}, None
    if target == "docker":
        read_only = {str(cfg.root): gateway_svc.PROJECT}
        st = cfg.elf_dir.stat()
        user = f"{st.st_uid}:{st.st_gid}" if st.st_uid else None  # files it writes in .elf/ stay the owner's
    return gateway_svc.Gateway(
        container=docker_name(cfg.get("deploy.prefix")), network=cfg.get("deploy.network"),
        port=cfg.get("gateway.port"), publish_address=cfg.get("gateway.host"),
        env={**gateway_svc.plain_env(values, cfg.get("gateway.port")), **env},
        secret_env={**secret, **provider_env}, volumes=volumes, read_only=read_only, user=user,
        replicas=cfg.get("gateway.replicas"), notes=notes)


def _provider_plan(app):
    from elfctl.services.llm.app import provider_plan

    return provider_plan(app)


def _docker_probes(app, timeout_s: float) -> dict[str, health_svc.Probe]:
    from elfctl.services.platform import docker as docker_platform

    # The deployed teams are read from the store before the checks start: a store that does not
    # answer (its own check says so) must not hold up building the others past the timeout.
    got, _ms = health_svc.run_concurrently({"teams": lambda: docker_platform.deployed_teams(
        lambda: app.store, app.config.get("deploy.target"))}, timeout_s)["teams"]
    teams = got if isinstance(got, list) else []
    if not _runs_containers(app) and not teams:  # teams in the store only: they may still run (orphans)
        return {}
    publish = app.config.get("deploy.publish_address")
    probes = {"docker": lambda: docker_platform.docker_check(app.docker),
              "registry": lambda: docker_platform.registry_check(app.registry)}
    for team in teams:
        probes[f"team:{team}"] = lambda team=team: docker_platform.team_check(app.target, team, publish,
                                                                              app.teams_dir)
    return probes


__all__ = ["health_report", "infra_up", "Check"]
