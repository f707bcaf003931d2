"""Deploy and the registry: a team's depends_on checked before anything is built, the team
registered (endpoints, revision, digest, team.yaml's registry fields) once it serves, and loops
between teams found by `team validate`."""

from __future__ import annotations

from elfctl.domain import registry as rules
from elfctl.domain.registry import Entry
from elfctl.errors import ElfError, OperationFailed
from elfctl.services.registry import entries as reg
from elfctl.services.registry import probes


def check_loops(specs) -> None:
    """InputError naming the loop when the teams' depends_on go round in a circle."""
    loop = rules.cycle({s.name: s.depends_on for s in specs})
    if loop:
        raise rules.loop_error(loop, next(s.path for s in specs if s.name == loop[0]).as_posix())


def in_dependency_order(specs) -> list:
    """The teams with each after the teams it depends on (`infra up` deploys them in this order)."""
    by_name = {s.name: s for s in specs}
    done: list = []
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in seen or name not in by_name or name in path:
            return
        for dep in by_name[name].depends_on:
            visit(dep, (*path, name))
        seen.add(name)
        done.append(by_name[name])

    for s in sorted(specs, key=lambda s: s.name):
        visit(s.name, ())
    return done


def check_dependencies(app, spec, ignore: bool = False) -> list[str]:
    """Before building: every entry spec.depends_on names must be registered and not critical, and
    the team must not close a loop with what is registered. Deployed teams it needs are probed first
    when due, so their status is fresh. Returns warnings (with `ignore`), else raises exit 1."""
    if not spec.depends_on:
        return []
    store = app.store
    probes.probe_due(store, lambda: app.target, app.config.get("discovery.probe_period_s"), "deploy probe",
                     warn=app.output.warn)
    everything = reg.graph(store)
    loop = rules.cycle({**{n: e.depends_on for n, e in everything.items()}, spec.name: spec.depends_on}, spec.name)
    if loop:
        raise rules.loop_error(loop, f"{spec.path}: depends_on")
    bad = []
    for dep in spec.depends_on:
        e = everything.get(dep)
        if e is None:
            bad.append(f"{dep}, which is not registered")
        elif e.status == "critical":
            bad.append(f"{dep}, which is critical ({e.reason})")
    if bad and not ignore:
        raise OperationFailed(f"team {spec.name} depends on " + "; and on ".join(bad),
                              hint=f"deploy or register it (`elfctl registry show {spec.depends_on[0]}`), "
                                   "or deploy with --ignore-deps")
    return [f"--ignore-deps: depends on {b}" for b in bad]


def network_url(cfg, spec) -> str:
    """Where other teams reach it on the platform network: its proxy (Docker) or Service (cluster)."""
    if cfg.get("deploy.target") == "kubernetes":
        from elfctl.services.deploy.k8s import kubernetes_namespace

        return f"http://{spec.name}.{kubernetes_namespace(cfg)}.svc:{spec.port}"
    return f"http://{cfg.get('deploy.prefix')}-{spec.name}:{spec.port}"


def register_team(app, spec, result) -> str | None:
    """After a switch (or an unchanged deploy): the team's entry, written by `deploy` (a trail row).
    Returns a warning when the store refused it: the deploy itself stands."""
    if result.state not in ("switched", "unchanged"):
        return None
    cfg = app.config
    endpoints = {"network": network_url(cfg, spec)}
    try:
        port = app.target.host_port(spec.name)
    except ElfError:
        port = None
    if port:
        endpoints["host"] = f"http://{cfg.get('deploy.publish_address')}:{port}"
    meta = {"revision": result.revision, "digest": result.digest, "image": result.image,
            "health_path": spec.health.path, "health_timeout_s": spec.health.timeout_s,
            "description": spec.description,
            "skills": [{"id": s.id, "name": s.name, "description": s.description, "tags": list(s.tags),
                        "examples": list(s.examples)} for s in spec.skills]}
    entry = Entry(spec.name, kind="team", url=endpoints["network"], endpoints=endpoints, owner=spec.owner,
                  lifecycle=spec.lifecycle, capabilities=spec.capabilities, depends_on=spec.depends_on,
                  metadata=meta, ttl_s=cfg.get("discovery.team_ttl_s"), source="deploy")
    try:
        reg.register(app.store, entry, actor="deploy")
        # One probe now: an `unchanged` deploy of a team whose replica died must not read passing.
        outcome, note = probes.probe_team(app.target, entry)
        reg.heartbeat(app.store, spec.name, outcome, note, actor="deploy probe")
    except ElfError as exc:
        return f"revision {result.revision} serves, but its registry entry was not written: {exc.message}"
    return None


def forget_team(app, name: str, actor: str = "team rm", why: str = "team removed") -> None:
    """`team rm`, `infra down`: the team's entry goes with it (a trail row), so dependents read `not
    registered` rather than a critical team that will never come back. Only the entry deploy wrote."""
    e = reg.get(app.store, name) if "registry_entries" in app.store.tables() else None
    if e is not None and e.kind == "team" and e.source == "deploy":
        reg.deregister(app.store, name, actor=actor, why=why)


def forget_stopped(app, stopped: list[str]) -> None:
    """After `infra down` stopped teams (its "team NAME" lines), on Docker or a cluster: their entries
    go. A store that refuses leaves them to their TTL, with a warning: the teams are stopped anyway."""
    for line in stopped:
        if line.startswith("team "):
            try:
                forget_team(app, line[len("team "):], actor="infra down", why="team stopped")
            except ElfError as exc:
                app.output.warn(f"registry: entry of {line} not removed: {exc.message}")
