"""The Docker side of `infra up/status/down` and `elfctl health`: the engine, the image registry,
the deploy target and the teams in teams/. A project without teams and without a configured
registry needs none of them, so they are then left out rather than failed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from elfctl.adapters import team_files as team_mod
from elfctl.adapters.local_images import MANAGED, ensure_registry_image
from elfctl.domain.health import Check
from elfctl.errors import ElfError, InputError, OperationFailed, Unreachable


@dataclass
class RegistrySettings:
    """registry.*: an external registry (url), or the local container elfctl runs."""

    url: str | None
    container: str
    image: str
    volume: str
    port: int


def in_use(teams_dir, registry_url: str | None) -> bool:
    """Whether this project runs containers: it has teams, or names a registry."""
    return bool(team_mod.discover(teams_dir)) or bool(registry_url)


def autostart_docker(docker_host: str | None, autostart: bool, elf_dir) -> str | None:
    """Start an installed local dockerd (systemd, else in the background as root). Returns how."""
    if docker_host or os.environ.get("DOCKER_HOST") or not autostart:
        return None
    if (
        shutil.which("systemctl")
        and subprocess.run(["systemctl", "start", "docker"], capture_output=True, timeout=60).returncode == 0
    ):
        return "systemctl start docker"
    if shutil.which("dockerd") and os.geteuid() == 0:
        elf_dir.mkdir(parents=True, exist_ok=True)
        log = open(elf_dir / "dockerd.log", "ab")
        subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
        return f"dockerd started in the background (log: {elf_dir / 'dockerd.log'})"
    return None


def environment_step(engine, autostart: Callable[[], str | None],
                     missing_secrets: Callable[[], list[str]]) -> tuple[bool, str]:
    """The engine answers (started when it can be), and every secret the teams name has a value."""
    changed, notes = False, []
    try:
        version = engine.ping()
    except Unreachable:
        how = autostart()
        if not how:
            raise
        deadline = time.monotonic() + 60
        while True:
            try:
                version = engine.ping()
                break
            except Unreachable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        changed = True
        notes.append(how)
    notes.append(f"Docker {version}")
    missing = missing_secrets()
    if missing:
        raise InputError(
            f"credentials missing (by name): {', '.join(missing)}",
            hint="elfctl creds set NAME --team TEAM (or export NAME); values are never printed",
        )
    return changed, "; ".join(notes)


def registry_step(engine, registry, reg: RegistrySettings) -> tuple[bool, str]:
    if reg.url:
        version = registry.ping()
        return False, f"external registry {reg.url} answers ({version})"
    changed, notes = False, []
    made, details = ensure_registry_image(engine, reg.image)
    if made:
        changed, notes = True, [details]
    if engine.ensure_volume(reg.volume, MANAGED):
        changed = True
        notes.append(f"created volume {reg.volume}")
    found = engine.inspect(reg.container)
    if found is None:
        engine.run(
            reg.container,
            reg.image,
            network="bridge",
            labels={**MANAGED, "elfctl.role": "registry"},
            env={},
            ports={5000: ("127.0.0.1", reg.port)},
            volumes={reg.volume: "/var/lib/registry"},
        )
        changed = True
        notes.append(f"started container {reg.container} on 127.0.0.1:{reg.port}")
    elif not found["State"].get("Running"):
        engine.start(reg.container)
        changed = True
        notes.append(f"restarted container {reg.container}")
    deadline = time.monotonic() + 20
    while True:
        try:
            registry.ping()
            break
        except Unreachable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    if not changed:
        notes.append(f"registry {reg.container} answers on {registry.address}")
    return changed, "; ".join(notes)


def teams_step(teams: list[str], deploy: Callable[[str], object], target,
               publish_address: str) -> tuple[bool, str]:
    """deploy(team) each team in turn; the first that does not serve stops the step."""
    changed, notes = False, []
    for team in teams:
        result = deploy(team)
        if result.exit_code:
            raise OperationFailed(
                f"team {team}: deploy {result.state}: {result.reason}",
                hint=f"see `elfctl deployments {team}`; `--skip teams` brings up the rest",
            )
        changed = changed or result.changed
        port = target.host_port(team)
        where = f" at http://{publish_address}:{port}" if port else ""
        notes.append(f"{team} r{result.revision} {result.state}{where}")
    return changed, "; ".join(notes) or "no teams"


def target_plan(kind: str, target) -> str:
    if kind == "kubernetes":  # names only: namespace, pull secret, Secrets' keys
        return "prepare the kubernetes deploy target: " + "; ".join(target.plan())
    return f"prepare the {kind} deploy target (network, base image)"


# --- health ------------------------------------------------------------------------------------------


def docker_check(engine) -> Check:
    return Check("docker", "pass", output=f"engine {engine.ping()}")


def registry_check(registry) -> Check:
    registry.ping()
    return Check("registry", "pass", output=f"v2 API answers at {registry.address}")


def orphaned(target, teams_dir, team: str) -> str | None:
    """Why a team the store records as deployed is an orphan (its folder in teams/ is gone), with
    what still runs of it; None when its folder is there."""
    folder = teams_dir / team
    if folder.is_dir():
        return None
    try:
        st = target.status(team)
        running = f"{st['ready']}/{st['desired']} replica(s) still running" if st["desired"] else "nothing running"
    except ElfError as exc:
        running = f"state unknown: {exc.message}"
    return f"no folder {folder}, but the store records it as deployed ({running}): removed or orphaned"


def orphan_hint(team: str) -> str:
    return f"`elfctl team rm {team}` stops it and closes its record (history kept), or restore teams/{team}"


def team_check(target, team: str, publish_address: str, teams_dir) -> Check:
    why = orphaned(target, teams_dir, team)
    if why:  # a warning, not a failure forever: the user removed the team, or has to decide
        return Check(f"team:{team}", "warn", output=why, hint=orphan_hint(team))
    st = target.status(team)
    status = st["status"]
    port = st.get("host_port")
    out = f"{st['ready']}/{st['desired']} ready, revision {st.get('revision')}" + (
        f", http://{publish_address}:{port}" if port else ""
    )
    if status == "pass":
        status, out, st = _endpoint_health(target, teams_dir, team, status, out, st)
    return Check(
        f"team:{team}",
        status,
        st["ready"],
        "replicas",
        output=out if status == "pass" else st["reason"],
        hint=None if status == "pass" else f"`elfctl logs {team}`, then `elfctl deploy {team}`",
    )


def _endpoint_health(target, teams_dir, team: str, status: str, out: str, st: dict):
    """Running is not healthy: ask each replica's health endpoint (team.yaml health.path)."""
    path = teams_dir / team / "team.yaml"
    if not path.is_file():
        return status, out + " (no team.yaml: health endpoint not checked)", st
    spec = team_mod.load(path)
    answers = target.endpoint_health(team, spec.health.path, timeout=spec.health.timeout_s,
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


def deployed_teams(store: Callable[[], object], kind: str) -> list[str]:
    """Teams with a switched deployment on this target; none when the store cannot say (its own
    probe reports why). store() opens the store."""
    try:
        rows = store().query(
            "SELECT DISTINCT team FROM deployments WHERE state = 'switched' AND target = ?", (kind,)
        )
    except ElfError:
        return []
    except Exception:  # the store probe reports a broken store; teams are then unknown
        return []
    return sorted(r["team"] for r in rows)


# --- status and down ---------------------------------------------------------------------------------


@dataclass
class InfraStatus:
    components: list[dict] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1 when a component is down; an orphaned team is reported, not failed."""
        return 1 if any(c["state"] not in ("up", "orphaned") for c in self.components) else 0


def status(store: Callable[[], object], engine: Callable[[], object], registry: Callable[[], object], target: Callable[[], object],
           kind: str, network: str, containers: bool, teams_dir) -> InfraStatus:
    """One line per component; a component that fails is `down` with why. The adapters come as
    functions that build them on first use: one that cannot be built is that component down."""
    out = InfraStatus()

    def add(name: str, fn):
        try:
            out.components.append({"component": name, "state": "up", "details": fn()})
        except ElfError as exc:
            out.components.append({"component": name, "state": "down", "details": exc.message})

    add("store", lambda: store().display_url)
    teams = deployed_teams(store, kind)
    if not containers and not teams:  # teams in the store only: they may still run (orphans)
        return out
    add("docker", lambda: f"engine {engine().ping()}")
    add("registry", lambda: f"{registry().address} ({registry().ping()})")

    def network_state():
        if not engine().network_exists(network):
            raise OperationFailed(f"network {network} missing")
        return f"network {network}"

    if kind == "kubernetes":
        add("target", lambda: "{host} {version}, namespace {namespace} present: {namespace_present}".format(
            **target().cluster_status()))
    else:
        add("target", network_state)
    for team in teams:
        try:
            why = orphaned(target(), teams_dir, team)
        except ElfError:  # no target to ask: team_state reports why
            why = None
        if why:
            out.components.append({"component": f"team:{team}", "state": "orphaned",
                                   "details": f"{why}; {orphan_hint(team)}"})
            continue

        def team_state(team=team):
            st = target().status(team)
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


def down(engine, registry, target: Callable[[], object], store: Callable[[], object], reg: RegistrySettings, network: str,
         purge: bool = False) -> DownResult:
    """Stop the teams and the local registry. Data (registry volume, images, the store) stays unless
    purge: then the registry volume, the network and elfctl's images go too (the store stays).
    target() and store() build theirs when needed: the target once the engine answered."""
    result = DownResult()
    engine.ping()
    built = target()
    for team in built.teams():
        if built.stop(team):
            result.stopped.append(f"team {team}")
    if not reg.url and engine.remove(reg.container):
        result.stopped.append(f"registry {reg.container}")
    if purge:
        if not reg.url and engine.remove_volume(reg.volume):
            result.removed.append(f"volume {reg.volume}")
        if engine.remove_network(network):
            result.removed.append(f"network {network}")
        registry_prefix = registry.address + "/elfctl/"
        for img in engine.images(label="elfctl.team"):
            for ref in img.get("RepoTags") or []:
                if ref.startswith(registry_prefix) and engine.remove_image(ref):
                    result.removed.append(f"image {ref}")
    else:
        result.kept.append(f"registry volume {reg.volume}, network, images")
    result.kept.append(f"store {store().display_url} (deployment history)")
    return result
