"""DeployTarget for one Docker engine: blue/green beside the old containers behind a per-team proxy.

The rollout starts the new replicas, gates them on health (docker_gate), switches the team's proxy
to them in one step (docker_proxy), watches them through the verification window (switching back at
once when they fail), and stops the old containers only after that. No request is refused during a
good deploy, and a version that fails its gate never receives traffic.
"""

from __future__ import annotations

import re
import time
from typing import Any

from elfctl.adapters.docker_gate import first_ended, gate, probe, window
from elfctl.adapters.docker_proxy import PROXY_PORT, TeamProxies, network_address
from elfctl.domain.health_gate import DEFAULT_WINDOW_S
from elfctl.domain.mcp_server_json import CONFIG_ENV, CONFIG_FILE
from elfctl.domain.rollout import RolloutReport
from elfctl.domain.team import SECRETS_DIR, memory_bytes, nano_cpus
from elfctl.errors import ElfError, InputError, OperationFailed
from elfctl.redact import plain


def _not_serving(name: str, found: dict | None) -> str | None:
    """Why a replica cannot answer, from its `docker inspect`, or None when it runs. Docker reports a
    container waiting out its restart back-off as Running *and* Restarting (with no address)."""
    if found is None:
        return f"{name} is not running (container not found)"
    state = found.get("State") or {}
    restarts = found.get("RestartCount") or 0
    if state.get("Restarting"):
        return (f"{name} is restarting (restarted {restarts} time(s), "
                f"last exit code {state.get('ExitCode')})")
    if not state.get("Running"):
        return f"{name} is not running ({state.get('Status', 'unknown')}, exit code {state.get('ExitCode')})"
    return None


SCALE_READY_S = 20.0  # how long a replica added by scale() may take to accept connections


class DockerTarget:
    name = "docker"
    pins_digest = False  # runs `repo:tag` from the local engine, so the push can go on beside the gate
    needs_local_image = True

    def __init__(
        self,
        engine,
        network: str = "elfctl",
        prefix: str = "elfctl",
        base_image: str = "elfctl/base:busybox",
        publish_address: str = "127.0.0.1",
        drain_s: float = 0.2,
        stop_grace_s: int = 10,
        secret_files=None,
    ):
        self.engine = engine
        self.network = network
        self.prefix = prefix
        self.base_image = base_image
        self.drain_s = drain_s
        self.stop_grace_s = stop_grace_s
        self.secret_files = secret_files  # adapters.secret_files.SecretFiles, for secrets_as: files
        self.proxy = TeamProxies(engine, network, prefix, base_image, publish_address, drain_s)
        self._progress = None
        self._read: dict[str, tuple] = {}  # team -> what serving() read from its proxy

    def set_progress(self, callback) -> None:
        self._progress = callback

    def _phase(self, phase: str) -> None:
        if self._progress:
            self._progress(phase)

    def _labels(self, team: str, role: str, **extra: str) -> dict[str, str]:
        return {
            "elfctl.managed": "true",
            "elfctl.prefix": self.prefix,
            "elfctl.team": team,
            "elfctl.role": role,
            **extra,
        }

    def proxy_name(self, team: str) -> str:
        return self.proxy.name(team)

    def host_port(self, team: str) -> int | None:
        return self.proxy.host_port(team)

    # --- protocol ---------------------------------------------------------------------------------

    def prepare(self) -> tuple[bool, str]:
        from elfctl.adapters.local_images import MANAGED, ensure_base_image

        made_net = self.engine.ensure_network(self.network, {**MANAGED, "elfctl.prefix": self.prefix})
        made_img, img_details = ensure_base_image(self.engine, self.base_image)
        changed = made_net or made_img
        net = f"created network {self.network}" if made_net else f"network {self.network} present"
        return changed, f"{net}; {img_details}"

    def serving(self, team: str) -> str | None:
        live = self.proxy.live(team)
        targets, image, _rev = live
        if targets:
            # Deploy and rollback ask this under the team's lock right before rollout(): what a
            # running proxy said then still holds when it starts (only this rollout may change it),
            # which saves asking again (a `docker exec`, ~50 ms).
            self._read[team] = live
        return image if targets else None

    def _app_containers(self, team: str) -> list[dict]:
        return self.engine.containers(
            {"elfctl.prefix": self.prefix, "elfctl.team": team, "elfctl.role": "app"}
        )

    def _log_tail(self, names: list[str], lines: int = 20) -> str:
        out = []
        for n in names:
            try:
                tail = list(self.engine.logs(n, tail=lines))
            except ElfError:
                continue
            if tail:
                out.append(f"--- {n}\n" + "\n".join(tail))
        return "\n".join(out)

    def _remove(self, names: list[str]) -> None:
        """For versions that never served (or are leftovers): no grace period."""
        for n in names:
            try:
                self.engine.remove(n, grace_s=0)
            except ElfError:
                pass
        if self.secret_files is not None:
            self.secret_files.remove(names)

    def _secret_files_ready(self) -> None:
        if self.secret_files is None:
            raise InputError("secrets_as: files needs deploy.secrets_dir", hint="set deploy.secrets_dir")
        self.secret_files.ready()

    def _sweep_secret_files(self, team: str, existing: set[str]) -> None:
        """Secret files of this team's containers that are gone (retired in the background since)."""
        if self.secret_files is not None:
            self.secret_files.sweep(re.compile(rf"{re.escape(self.prefix)}-{re.escape(team)}-r\d+-\d+"), existing)

    def rollout(
        self,
        spec,
        image: str,
        revision: int,
        env: dict[str, str],
        secrets: dict[str, Any],
        deadline_s: float,
        before_switch=None,
    ) -> RolloutReport:
        """before_switch: called once the new replicas passed the gate; if it raises, they are
        removed, nothing is switched, and the error goes up."""
        team = spec.name
        self.engine.ensure_network(self.network, {"elfctl.managed": "true", "elfctl.prefix": self.prefix})
        read = self._read.pop(team, None)
        self.proxy.ensure(spec, self._labels(team, "proxy"))
        old_targets, old_image, old_rev = read or self.proxy.live(team)
        leftovers = self._clear_leftovers(team, set(old_targets))
        self._phase("starting")
        if spec.secret_files() or CONFIG_ENV in secrets:
            self._secret_files_ready()  # a folder on disk is refused (exit 2) before anything starts
        names = [f"{self.prefix}-{team}-r{revision}-{i}" for i in range(max(1, spec.replicas))]
        try:
            self._start(spec, names, image, revision, env, secrets)
        except ElfError as exc:
            return self._refuse(names, f"could not start: {exc.message}", [], leftovers)
        self._phase("verifying")
        verify_t0 = time.monotonic()
        budget = min(deadline_s, spec.health.start_timeout_s)
        ok, reason, warnings = gate(self.engine, self.network, spec, names, budget)
        if not ok:
            return self._refuse(names, f"health gate: {reason}", warnings, leftovers)
        if before_switch is not None:
            try:
                before_switch()
            except BaseException:
                self._remove(names)
                raise
        failed = self.proxy.switch(team, names, spec.port, revision, image)
        if failed:
            return self._refuse(names, f"switch: {failed}", warnings, leftovers)
        self._phase("switched")
        window_s, watched, why = self._verify(spec, names, deadline_s - (time.monotonic() - verify_t0), warnings)
        if why is not None:  # back to what served before (or to nothing), then the new ones go
            before = (old_rev, old_image) if old_targets else (None, None)
            self.proxy.write_targets(team, old_targets, spec.port, *before)
            back = f"switched back to revision {old_rev}" if old_targets else "nothing serves now"
            seconds = watched.seconds if watched else 0
            return self._refuse(names, f"after the switch: {why} ({seconds:g}s into the {window_s:g}s "
                                f"verification window); {back}", warnings, leftovers, drain=True)
        retired = [n for n in old_targets if n not in names]
        self._retire(retired)
        if window_s > 0:
            reason = f"{reason}; {watched.reason}"
        return RolloutReport(True, reason, "", warnings, retired, leftovers)

    def _verify(self, spec, names: list[str], left_s: float, warnings: list[str]):
        """The verification window after the switch, within the `left_s` the time budget leaves:
        (window_s, watched, why it failed or None). The restart policy stays off through it (a
        crash must show, not be restarted out of sight) and turns on once it passed."""
        wanted = DEFAULT_WINDOW_S if spec.health.soak_s is None else spec.health.soak_s
        window_s = max(0.0, min(wanted, left_s))
        if window_s < wanted:
            warnings.append(f"verification window cut to {window_s:.1f}s of {wanted:g}s by the time "
                            f"budget (--timeout)")
        watched = None
        try:
            users = network_address(self.engine.inspect(self.proxy_name(spec.name)), self.network)
            watched = window(self.engine, self.network, spec, names, users and (users, PROXY_PORT), window_s)
            warnings += [w for w in watched.warnings if w not in warnings]
            if not watched.ok:
                return window_s, watched, watched.reason
            for n in names:
                self.engine.keep_running(n)
            return window_s, watched, first_ended(self.engine, names, {})  # an exit before the policy
        except ElfError as exc:  # unverified is not verified: the old version takes over again
            return window_s, watched, f"could not watch the new version: {exc.message}"

    def _clear_leftovers(self, team: str, serving: set[str]) -> list[str]:
        """Containers the proxy does not serve: replaced replicas still in their stop grace (a deploy
        shortly after another), or those of a killed deploy or a helper that died. Each gets the
        same detached stop as a replaced replica: two stops of one container end at the first
        one's deadline, so none loses its grace, and none costs this deploy any time."""
        existing = [c["Names"][0].lstrip("/") for c in self._app_containers(team)]
        leftovers = [n for n in existing if n not in serving]
        if leftovers and not self.engine.retire_later(leftovers, after_s=0, grace_s=self.stop_grace_s):
            self._remove(leftovers)
        self._sweep_secret_files(team, set(existing))
        return leftovers

    def _start(self, spec, names: list[str], image: str, revision: int, env: dict[str, str],
               secrets: dict[str, Any]) -> None:
        """Run the new replicas (no restart policy until the verification window passed: a crash
        must show, not loop)."""
        files = spec.secret_files()
        values = {k: plain(v) for k, v in secrets.items()}
        mcp = values.pop(CONFIG_ENV, None)  # the team's mcpServers document: always a file
        # Values not listed as files (the LLM gateway's key: clients read it from the environment) stay env.
        full_env = {**spec.env, **env, **{f"{k}_FILE": path for k, path in files.items()},
                    **{k: v for k, v in values.items() if k not in files}}
        as_files = {k: values[k] for k in files}
        if mcp is not None:
            as_files[CONFIG_FILE] = mcp
            full_env[CONFIG_ENV] = f"{SECRETS_DIR}/{CONFIG_FILE}"
        labels = self._labels(spec.name, "app", **{"elfctl.revision": str(revision), "elfctl.image": image})
        for n in names:
            self.engine.run(
                n,
                image,
                network=self.network,
                env=full_env,
                read_only=self.secret_files.write(n, as_files, SECRETS_DIR) if as_files else None,
                labels=labels,
                restart=False,
                mem_limit=memory_bytes(spec.resources.memory),
                nano_cpus=nano_cpus(spec.resources.cpu),
            )

    def _refuse(self, names: list[str], reason: str, warnings: list[str], leftovers: list[str],
                drain: bool = False) -> RolloutReport:
        """The new version does not serve: keep its log tail, remove it (after the drain when it
        had traffic), and say why."""
        logs = self._log_tail(names)
        if drain:
            time.sleep(self.drain_s)
        self._remove(names)
        return RolloutReport(False, reason, logs, warnings, [], leftovers)

    def _retire(self, names: list[str]) -> None:
        """Stop the replicas the switch took traffic from, after the drain (connections opened just
        before the switch still reach them). Detached when the engine can, so the deploy returns as
        soon as the new version serves; whatever is left is a leftover for the next rollout."""
        if not names or self.engine.retire_later(names, after_s=self.drain_s, grace_s=self.stop_grace_s):
            return
        time.sleep(self.drain_s)
        for n in names:
            self.engine.retire(n)

    def stop(self, team: str) -> bool:
        self._read.pop(team, None)
        names = [c["Names"][0].lstrip("/") for c in self._app_containers(team)]
        proxies = self.proxy.names(team)  # with one a killed port move left behind
        for n in names + proxies:
            self.engine.remove(n, grace_s=2)  # a deliberate stop: give requests in flight a moment
        self._sweep_secret_files(team, set())
        return bool(names or proxies)

    def logs(self, team: str, tail: int = 100, follow: bool = False):
        targets, _image, _rev = self.proxy.live(team)
        if not targets:
            return iter(())
        return self.engine.logs(targets[0], tail=tail, follow=follow)

    def status(self, team: str) -> dict[str, Any]:
        endpoints, image, rev = self.proxy.live(team, with_ports=True)
        targets = [t.rsplit(":", 1)[0] for t in endpoints]
        ready, worst, reason = 0, "pass", ""
        for n in targets:
            problem = _not_serving(n, self.engine.inspect(n))
            if problem:
                worst, reason = "fail", problem
            else:
                ready += 1
        if not targets:
            worst, reason = "fail", "nothing serving"
        return {
            "desired": len(targets),
            "ready": ready,
            "status": worst,
            "reason": reason,
            "image": image,
            "revision": rev,
            "host_port": self.host_port(team),
            "endpoints": endpoints,  # name:port, for endpoint_health
        }

    def endpoint_health(
        self, team: str, path: str, timeout: float = 2.0, endpoints: list[str] | None = None
    ) -> list[tuple[str, str, str]]:
        """(container, outcome, reason) of one GET of `path` on each replica the proxy serves, read
        the way the deploy gate reads it (`elfctl health`: a running container may still be sick).
        `endpoints`: status()'s name:port list, which saves asking the proxy again."""
        if endpoints is None:
            endpoints = self.proxy.live(team, with_ports=True)[0]
        found = []
        for target in endpoints:
            name, _, port = target.rpartition(":")
            found_ = self.engine.inspect(name)
            address = network_address(found_, self.network)
            if address is None:
                found.append((name, "fail", _not_serving(name, found_) or f"{name} has no address"))
                continue
            outcome, reason, _refused = probe(address, int(port), path, timeout)
            found.append((name, outcome, reason))
        return found

    def scale(self, team: str, replicas: int) -> int:
        """Fewer replicas: the proxy stops sending to the last ones, which then retire as replaced
        replicas do. More: clones of a serving replica (its image, env, labels, limits, mounts),
        added to the proxy once they accept connections on the team's port within SCALE_READY_S.
        The same count: replicas the proxy does not serve (left by a scale killed half-way) retire."""
        if replicas < 1:
            raise InputError(f"replicas {replicas}: a team runs at least 1 replica", hint="use 1 or more")
        endpoints, image, rev = self.proxy.live(team, with_ports=True)
        if not endpoints:
            raise OperationFailed(f"team {team} is not serving on docker: nothing to scale",
                                  hint=f"deploy it first: `elfctl deploy {team}`")
        names = [e.rpartition(":")[0] for e in endpoints]
        port = int(endpoints[0].rpartition(":")[2])
        if replicas < len(names):
            self.proxy.write_targets(team, names[:replicas], port, rev, image)
            self._retire(names[replicas:])
        elif replicas > len(names):
            added = self._clone(team, names[0], replicas - len(names))
            try:
                for n in added:
                    self._accepting(n, port, SCALE_READY_S)
            except ElfError:
                self._remove(added)
                raise
            self.proxy.write_targets(team, names + added, port, rev, image)
        else:  # the count that serves: what a scale killed half-way left running unserved is removed
            self._clear_leftovers(team, set(names))
        return len(names)

    def _clone(self, team: str, source: str, count: int) -> list[str]:
        found = self.engine.inspect(source) or {}
        conf, host = found.get("Config") or {}, found.get("HostConfig") or {}
        labels = conf.get("Labels") or {}
        taken = {c["Names"][0].lstrip("/") for c in self._app_containers(team)}
        stem = source.rsplit("-", 1)[0]  # prefix-team-rN
        names = [n for n in (f"{stem}-{i}" for i in range(len(taken) + count + 1)) if n not in taken][:count]
        binds = [b.split(":") for b in host.get("Binds") or []]
        for n in names:
            self.engine.run(n, conf.get("Image") or labels.get("elfctl.image", ""), network=self.network,
                            env=dict(e.split("=", 1) for e in conf.get("Env") or [] if "=" in e),
                            labels=labels, restart=True, mem_limit=host.get("Memory") or None,
                            nano_cpus=host.get("NanoCpus") or None,
                            volumes={b[0]: b[1] for b in binds if len(b) < 3 or b[2] != "ro"} or None,
                            read_only={b[0]: b[1] for b in binds if len(b) > 2 and b[2] == "ro"} or None)
        return names

    def _accepting(self, name: str, port: int, within_s: float) -> None:
        import socket

        deadline = time.monotonic() + within_s
        while True:
            info = self.engine.inspect(name)
            address = network_address(info, self.network)
            if address:
                try:
                    socket.create_connection((address, port), timeout=0.5).close()
                    return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise OperationFailed(f"new replica {name} does not accept connections on port {port} "
                                      f"within {within_s:g}s ({_not_serving(name, info) or 'running'})",
                                      hint=f"see `docker logs {name}`")
            time.sleep(0.1)

    def teams(self) -> list[str]:
        """Teams with a proxy on this engine (for infra down/status)."""
        found = self.engine.containers({"elfctl.prefix": self.prefix, "elfctl.role": "proxy"})
        return sorted({c["Labels"].get("elfctl.team", "") for c in found} - {""})
