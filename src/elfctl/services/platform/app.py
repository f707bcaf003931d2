"""Platform-wide use cases that gather their adapters from the run's App: the health report and
`infra up`. Each feature adds its probe and its step here, in the order a user expects."""

from __future__ import annotations

from elfctl.domain.health import Check, HealthReport
from elfctl.errors import InputError
from elfctl.services.platform import health as health_svc
from elfctl.services.platform import infra as infra_svc
from elfctl.services.deploy import k8s as k8s_svc
from elfctl.services.platform import migrate as migrate_svc


def health_probes(app, deep: bool = False, timeout_s: float | None = None) -> dict[str, health_svc.Probe]:
    from elfctl.services.platform import docker as docker_platform
    from elfctl.services.llm import provider_health

    llm_plan = provider_health.plan(app)  # the providers the teams' LLM policies name
    llm_providers = provider_health.probes(app, llm_plan, deep=deep, timeout_s=timeout_s)
    return {
        "store": health_svc.store_probe(lambda: app.store, app.migrations_dir),
        **docker_platform.probes(app),  # docker, registry, team:<name> (when the project runs teams)
        "disk": health_svc.disk_probe(app.config.root, app.config.get("health.disk_warn_free"),
                                      app.config.get("health.disk_fail_free")),
        "memory": health_svc.memory_probe(app.config.get("health.memory_warn_free"),
                                          app.config.get("health.memory_fail_free")),
        "creds": _credentials_probe(app),
        "llm": _llm_probe(app, llm_plan.models),
        **llm_providers,
        "budgets": _budget_probe(app),
        **k8s_svc.health_probes(app),
    }


def _llm_probe(app, covered: set[str] = frozenset()) -> health_svc.Probe:
    from elfctl.services.llm.health import llm_probe

    return llm_probe(lambda: app.store, covered)


def _budget_probe(app) -> health_svc.Probe:
    from elfctl.services.cost.budget_health import budget_probe

    return budget_probe(lambda: app.store, app.teams_dir)


def _credentials_probe(app) -> health_svc.Probe:
    def probe() -> Check:
        from elfctl.services.credentials import checks as credential_checks

        return credential_checks.health_check(app.vault("elfctl health"))

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

    from elfctl.services.platform import docker as docker_platform

    steps = [
        infra_svc.Step("store", "migrate the store to the newest schema", migrate_step),
    ]
    # environment, registry, target, teams: only when the project has teams or a registry.
    docker_steps = docker_platform.steps(app)
    return docker_steps[:1] + steps + docker_steps[1:]


def infra_up(app, dry_run: bool = False, only: list[str] = (), skip: list[str] = ()) -> infra_svc.UpResult:
    result = infra_svc.UpResult(dry_run=dry_run)
    result.steps = infra_svc.run_steps(infra_steps(app), dry_run, list(only), list(skip), app.output.info)
    if not dry_run:
        result.health = health_report(app)
    return result


def infra_status(app):
    from elfctl.services.platform import docker as docker_platform

    return docker_platform.status(app)


def infra_down(app, purge: bool = False):
    from elfctl.services.platform import docker as docker_platform

    return docker_platform.down(app, purge)


__all__ = ["health_report", "infra_up", "Check"]
