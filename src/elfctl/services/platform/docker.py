"""The Docker side of `infra up/status/down` and `elfctl health`: the engine, the image registry,
the deploy target and the teams in teams/. A project without teams and without a configured
registry needs none of them, so they are then left out rather than failed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field

from elfctl.domain import team as team_mod
from elfctl.domain.health import Check
from elfctl.errors import ElfError, OperationFailed, Unreachable
from elfctl.adapters.local_images import MANAGED, ensure_registry_image


def in_use(app) -> bool:
    """Whether this project runs containers: it has teams, or names a registry."""
    return bool(team_mod.discover(app.teams_dir)) or bool(app.config.get("registry.url"))


def _specs(app) -> list:
    return [team_mod.load(p) for p in team_mod.discover(app.teams_dir)]


def _autostart_docker(app) -> str | None:
    """Start an installed local dockerd (systemd, else in the background as root). Returns how."""
    if (
        app.config.get("docker.host")
        or os.environ.get("DOCKER_HOST")
        or not app.config.get("docker.autostart")
    ):
        return None
    if (
        shutil.which("systemctl")
        and subprocess.run(["systemctl", "start", "docker"], capture_output=True, timeout=60).returncode == 0
    ):
        return "systemctl start docker"
    if shutil.which("dockerd") and os.geteuid() == 0:
        app.config.elf_dir.mkdir(parents=True, exist_ok=True)
        log = open(app.config.elf_dir / "dockerd.log", "ab")
        subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
        return f"dockerd started in the background (log: {app.config.elf_dir / 'dockerd.log'})"
    return None


def environment_step(app) -> tuple[bool, str]:
    changed, notes = False, []
    try:
        version = app.docker.ping()
    except Unreachable:
        how = _autostart_docker(app)
        if not how:
            raise
        deadline = time.monotonic() + 60
        while True:
            try:
                version = app.docker.ping()
                break
            except Unreachable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        changed = True
        notes.append(how)
    notes.append(f"Docker {version}")
    from elfctl.services.deploy.app import missing_secrets

    missing = missing_secrets(app, _specs(app))
    if missing:
        from elfctl.errors import InputError

        raise InputError(
            f"credentials missing (by name): {', '.join(missing)}",
            hint="elfctl creds set NAME --team TEAM (or export NAME); values are never printed",
        )
    return changed, "; ".join(notes)


def registry_step(app) -> tuple[bool, str]:
    cfg = app.config
    if cfg.get("registry.url"):
        version = app.registry.ping()
        return False, f"external registry {cfg.get('registry.url')} answers ({version})"
    engine, name, image = app.docker, cfg.get("registry.container"), cfg.get("registry.image")
    changed, notes = False, []
    made, details = ensure_registry_image(engine, image)
    if made:
        changed, notes = True, [details]
    if engine.ensure_volume(cfg.get("registry.volume"), MANAGED):
        changed = True
        notes.append(f"created volume {cfg.get('registry.volume')}")
    found = engine.inspect(name)
    if found is None:
        engine.run(
            name,
            image,
            network="bridge",
            labels={**MANAGED, "elfctl.role": "registry"},
            env={},
            ports={5000: ("127.0.0.1", cfg.get("registry.port"))},
            volumes={cfg.get("registry.volume"): "/var/lib/registry"},
        )
        changed = True
        notes.append(f"started container {name} on 127.0.0.1:{cfg.get('registry.port')}")
    elif not found["State"].get("Running"):
        engine.start(name)
        changed = True
        notes.append(f"restarted container {name}")
    deadline = time.monotonic() + 20
    while True:
        try:
            app.registry.ping()
            break
        except Unreachable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    if not changed:
        notes.append(f"registry {name} answers on {app.registry.address}")
    return changed, "; ".join(notes)


def teams_step(app) -> tuple[bool, str]:
    from elfctl.services.deploy.app import deploy_team

    changed, notes = False, []
    for spec in _specs(app):
        result = deploy_team(app, spec.name)
        if result.exit_code:
            raise OperationFailed(
                f"team {spec.name}: deploy {result.state}: {result.reason}",
                hint=f"see `elfctl deployments {spec.name}`; `--skip teams` brings up the rest",
            )
        changed = changed or result.changed
        port = app.target.host_port(spec.name)
        where = f" at http://{app.config.get('deploy.publish_address')}:{port}" if port else ""
        notes.append(f"{spec.name} r{result.revision} {result.state}{where}")
    return changed, "; ".join(notes) or "no teams"


def _target_plan(app) -> str:
    if app.config.get("deploy.target") == "kubernetes":  # names only: namespace, pull secret, Secrets' keys
        return "prepare the kubernetes deploy target: " + "; ".join(app.target.plan())
    return f"prepare the {app.config.get('deploy.target')} deploy target (network, base image)"


def steps(app) -> list:
    from elfctl.services.platform.infra import Step

    if not in_use(app):
        return []
    return [
        Step(
            "environment",
            "check Docker (start it if installed) and the teams' credentials by name",
            lambda: environment_step(app),
        ),
        Step(
            "registry",
            "check the external registry, or start the local registry container",
            lambda: registry_step(app),
        ),
        Step("target", _target_plan(app), lambda: app.target.prepare()),
        Step(
            "teams", "deploy every team in teams/ (unchanged teams are left alone)", lambda: teams_step(app)
        ),
    ]


# --- health ------------------------------------------------------------------------------------------


def _docker_probe(app):
    def probe() -> Check:
        version = app.docker.ping()
        return Check("docker", "pass", output=f"engine {version}")

    return probe


def _registry_probe(app):
    def probe() -> Check:
        app.registry.ping()
        return Check("registry", "pass", output=f"v2 API answers at {app.registry.address}")

    return probe


def _team_probe(app, team: str):
    def probe() -> Check:
        st = app.target.status(team)
        status = st["status"]
        port = st.get("host_port")
        out = f"{st['ready']}/{st['desired']} ready, revision {st.get('revision')}" + (
            f", http://{app.config.get('deploy.publish_address')}:{port}" if port else ""
        )
        if status == "pass":
            status, out, st = _endpoint_health(app, team, status, out, st)
        return Check(
            f"team:{team}",
            status,
            st["ready"],
            "replicas",
            output=out if status == "pass" else st["reason"],
            hint=None if status == "pass" else f"`elfctl logs {team}`, then `elfctl deploy {team}`",
        )

    return probe


def _endpoint_health(app, team: str, status: str, out: str, st: dict):
    """Running is not healthy: ask each replica's health endpoint (team.yaml health.path)."""
    path = app.teams_dir / team / "team.yaml"
    if not path.is_file():
        return status, out + " (no team.yaml: health endpoint not checked)", st
    spec = team_mod.load(path)
    answers = app.target.endpoint_health(team, spec.health.path, timeout=spec.health.timeout_s,
                                         endpoints=st.get("endpoints"))
    if answers is None:  # the target does not reach replicas itself (a cluster's readiness probes do)
        return status, out, st
    bad = [f"{name}: {reason}" for name, outcome, reason in answers if outcome == "fail"]
    warned = [f"{name}: {reason}" for name, outcome, reason in answers if outcome == "warn"]
    if bad:
        return "fail", out, {**st, "reason": f"{spec.health.path} failing on " + "; ".join(bad)}
    if warned:
        return "warn", out, {**st, "reason": "; ".join(warned)}
    return status, out + f", {spec.health.path} passing", st


def deployed_teams(app) -> list[str]:
    try:
        rows = app.store.query(
            "SELECT DISTINCT team FROM deployments WHERE state = 'switched' AND target = ?",
            (app.config.get("deploy.target"),),
        )
    except ElfError:
        return []
    except Exception:  # the store probe reports a broken store; teams are then unknown
        return []
    return sorted(r["team"] for r in rows)


def probes(app) -> dict:
    if not in_use(app):
        return {}
    out = {"docker": _docker_probe(app), "registry": _registry_probe(app)}
    for team in deployed_teams(app):
        out[f"team:{team}"] = _team_probe(app, team)
    return out


# --- status and down ---------------------------------------------------------------------------------


@dataclass
class InfraStatus:
    components: list[dict] = field(default_factory=list)


def status(app) -> InfraStatus:
    out = InfraStatus()

    def add(name: str, fn):
        try:
            out.components.append({"component": name, "state": "up", "details": fn()})
        except ElfError as exc:
            out.components.append({"component": name, "state": "down", "details": exc.message})

    add("store", lambda: app.store.display_url)
    if not in_use(app):
        return out
    add("docker", lambda: f"engine {app.docker.ping()}")
    add("registry", lambda: f"{app.registry.address} ({app.registry.ping()})")

    def network():
        if not app.docker.network_exists(app.config.get("deploy.network")):
            raise OperationFailed(f"network {app.config.get('deploy.network')} missing")
        return f"network {app.config.get('deploy.network')}"

    if app.config.get("deploy.target") == "kubernetes":
        add("target", lambda: "{host} {version}, namespace {namespace} present: {namespace_present}".format(
            **app.target.cluster_status()))
    else:
        add("target", network)
    for team in deployed_teams(app):

        def team_state(team=team):
            st = app.target.status(team)
            if st["status"] != "pass":
                raise OperationFailed(st["reason"])
            where = f", host port {st['host_port']}" if st.get("host_port") else f", image {st.get('image', '')}"
            return f"revision {st['revision']}, {st['ready']}/{st['desired']} ready{where}"

        add(f"team:{team}", team_state)
    return out


@dataclass
class DownResult:
    stopped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def down(app, purge: bool = False) -> DownResult:
    """Stop the teams and the local registry. Data (registry volume, images, the store) stays unless
    purge: then the registry volume, the network and elfctl's images go too (the store stays)."""
    cfg, engine, result = app.config, app.docker, DownResult()
    engine.ping()
    for team in app.target.teams():
        if app.target.stop(team):
            result.stopped.append(f"team {team}")
    if not cfg.get("registry.url") and engine.remove(cfg.get("registry.container")):
        result.stopped.append(f"registry {cfg.get('registry.container')}")
    if purge:
        if not cfg.get("registry.url") and engine.remove_volume(cfg.get("registry.volume")):
            result.removed.append(f"volume {cfg.get('registry.volume')}")
        if engine.remove_network(cfg.get("deploy.network")):
            result.removed.append(f"network {cfg.get('deploy.network')}")
        registry_prefix = app.registry.address + "/elfctl/"
        for img in engine.images(label="elfctl.team"):
            for ref in img.get("RepoTags") or []:
                if ref.startswith(registry_prefix) and engine.remove_image(ref):
                    result.removed.append(f"image {ref}")
    else:
        result.kept.append(f"registry volume {cfg.get('registry.volume')}, network, images")
    result.kept.append(f"store {app.store.display_url} (deployment history)")
    return result
