"""The resource monitor wired from the run's App: which types apply to this project, with which
adapters, and the policies applied through the deploy target and the store."""

from __future__ import annotations

import os
import threading

from elfctl.services.resources import policy
from elfctl.services.resources.monitor import Snapshot, measure


def _runs_containers(app) -> bool:
    from elfctl.services.platform.docker import in_use

    return in_use(app.teams_dir, app.config.get("registry.url"))


def _containers(app):
    """The team containers' sampler (Docker target only), shared by memory, cpu and docker."""
    if app.config.get("deploy.target") != "docker":
        return None
    from elfctl.services.resources.containers import Containers
    from elfctl.services.resources.host import meminfo

    return Containers(app.docker, app.config.get("deploy.prefix"), meminfo()[0], os.cpu_count() or 1)


def _providers(app) -> list:
    """The providers the teams' LLM policies name (as `elfctl health` reads them; not through
    services/llm/app, whose call path takes half a second to import)."""
    from elfctl.services.llm.provider_health import plan

    return plan(app.teams_dir, lambda: app.prices).providers


def _once(fn):
    """fn's result, computed by the first thread that asks (api_quota and network both need the
    teams' providers: reading every team.yaml and the price map once per measurement)."""
    lock, got = threading.Lock(), []

    def get():
        with lock:
            if not got:
                got.append(fn())
            return got[0]

    return get


def _gateway_runs(app) -> bool:
    """Whether `infra up` started the gateway container here (not started: the `gateway` health
    component says "not configured"; the network type does not call it down)."""
    from elfctl.services.deploy.gateway_env import docker_name

    cfg = app.config
    if cfg.get("deploy.target") != "docker" or not _runs_containers(app):
        return False
    try:
        return bool(app.docker.inspect(docker_name(cfg.get("deploy.prefix"))))
    except Exception:  # noqa: BLE001 (no engine: the docker type says so)
        return False


def _endpoints(app, providers=None) -> dict[str, str]:
    cfg = app.config
    out = {}
    if cfg.get("deploy.target") == "kubernetes":  # the registry the cluster pulls from
        if cfg.get("kubernetes.registry") or cfg.get("registry.url"):
            out["registry"] = cfg.get("kubernetes.registry") or cfg.get("registry.url")
    elif cfg.get("registry.url") or _runs_containers(app):
        out["registry"] = app.registry.address
    if _gateway_runs(app):  # the gateway `infra up` started serves the teams
        out["gateway"] = f"{cfg.get('gateway.host') or '127.0.0.1'}:{cfg.get('gateway.port')}"
    for p in (providers or (lambda: _providers(app)))():
        base = os.environ.get(f"{p.name.upper()}_API_BASE") or os.environ.get(f"{p.name.upper()}_BASE_URL")
        if base:
            out[f"provider:{p.name}"] = base
    return out


def measures(app) -> dict:
    """type -> a function measuring it, or why it is not configured here."""
    from elfctl.services.resources import engine, host, network, pods, quota, store

    cfg = app.config
    lim = policy.limits(cfg)
    timeout = cfg.get("resources.timeout_s")
    sampler = _containers(app)
    providers = _once(lambda: _providers(app))
    on_docker = cfg.get("deploy.target") == "docker"
    on_k8s = cfg.get("deploy.target") == "kubernetes"

    return {
        "api_quota": lambda: quota.api_quota(lim["api_quota"], lambda: app.store, app.teams_dir,
                                             [p.name for p in providers()]),
        "memory": lambda: host.memory(lim["memory"], lambda: sampler),
        "cpu": lambda: host.cpu(lim["cpu"], lambda: sampler),
        "database": lambda: store.database(lim["database"], lambda: app.store, cfg.get("store.busy_timeout_ms")),
        "mcp_server": lambda: _mcp(app, lim["mcp_server"], timeout),
        "network": lambda: network.network(lim["network"], _endpoints(app, providers), timeout),
        "docker": (lambda: engine.docker(lim["docker"], app.docker, sampler)) if on_docker
        else "deploy.target is kubernetes: no Docker engine in use",
        "k8s_pod": (lambda: pods.k8s_pods(lim["k8s_pod"], app.target)) if on_k8s
        else "deploy.target is docker: no cluster in use",
    }


def _mcp(app, limits, timeout_s: float):
    from elfctl.errors import ElfError, StoreNotMigrated
    from elfctl.services.mcp import servers
    from elfctl.services.resources.mcp import mcp_servers
    from elfctl.services.resources.status import Reading

    try:
        names = [e.name for e in servers.list_(app.store)]
    except StoreNotMigrated:
        names = []  # no registry table yet: nothing registered
    except ElfError as exc:  # the store's own reading says what is wrong with it
        return [Reading("mcp_server", "-", "unknown", detail=f"the registered servers cannot be read: {exc.message}")]
    if not names:
        return mcp_servers(limits, names, None, timeout_s)
    from elfctl.services.mcp import check as checks  # the MCP check (and its resolver) only for servers to check
    from elfctl.services.mcp.app import resolver

    return mcp_servers(limits, names, lambda n, t: checks.check(app.store, resolver(app, command="elfctl resources"),
                                                                n, t, actor="resources"), timeout_s * 0.9)


def snapshot(app, apply: bool = False) -> Snapshot:
    """Measure every type, then plan the policies; with `apply`, carry them out."""
    cfg = app.config
    chosen = policy.strategies(cfg)
    snap = measure(measures(app), policy.limits(cfg), cfg.get("resources.timeout_s"))
    try:
        from elfctl.services.deploy import scale

        scaled = scale.scaled(app.store)
        breakers = policy.open_resource_breakers(app.store)
    except Exception as exc:  # noqa: BLE001 (the store is down: nothing remembered can be read or written)
        from elfctl.errors import ElfError

        if not isinstance(exc, ElfError):
            raise
        scaled, breakers = [], set()
    snap.steps = policy.plan(snap, chosen, scaled, breakers)
    if apply:
        from elfctl.services.deploy import scale

        policy.apply(snap.steps, lambda: app.store,
                     lambda team, resource, trigger: scale.scale_down(app, team, resource, trigger, since=snap.time),
                     lambda team, trigger: scale.restore(app, team, trigger))
        snap.applied = True
    return snap


def health_probes(app) -> dict:
    """`elfctl health` components fed by the monitor, where it adds what no other component says:
    the store's limits (connections, lock waits), the providers' endpoints (the registry and the
    gateway have their own components), and the team pods on a cluster. Not cpu: a busy host is not
    a broken one."""
    from elfctl.services.platform.health import readings_probe
    from elfctl.services.resources import network, pods, store

    cfg = app.config
    lim = policy.limits(cfg)
    out = {"resource:database": readings_probe("resource:database", lambda: store.database(
        lim["database"], lambda: app.store, cfg.get("store.busy_timeout_ms")))}
    providers = {k: v for k, v in _endpoints(app).items() if k.startswith("provider:")}
    if providers:
        out["resource:network"] = readings_probe("resource:network", lambda: network.network(
            lim["network"], providers, cfg.get("resources.timeout_s")))
    if cfg.get("deploy.target") == "kubernetes":
        out["resource:k8s_pod"] = readings_probe("resource:k8s_pod", lambda: pods.k8s_pods(lim["k8s_pod"], app.target))
    return out
