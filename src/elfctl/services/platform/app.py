"""Platform-wide use cases that gather their adapters from the run's App: the health report and
`infra up`. Each feature adds its probe and its step here, in the order a user expects."""

from __future__ import annotations

from elfctl.domain.health import Check, HealthReport
from elfctl.errors import InputError
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
        **_docker_probes(app),  # docker, registry, team:<name> (when the project runs teams)
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
    }


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
    from elfctl.services.platform import docker as docker_platform

    return docker_platform.down(app.docker, app.registry, lambda: app.target, lambda: app.store,
                                _registry_settings(app), app.config.get("deploy.network"), purge)


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
        infra_svc.Step("teams", "deploy every team in teams/ (unchanged teams are left alone)", teams),
    ]


def _docker_probes(app) -> dict[str, health_svc.Probe]:
    from elfctl.services.platform import docker as docker_platform

    teams = docker_platform.deployed_teams(lambda: app.store, app.config.get("deploy.target"))
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
