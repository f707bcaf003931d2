"""DeployTarget for one Docker engine: blue/green beside the old containers behind a per-team proxy.

The rollout starts the new replicas, gates them on health (docker_gate), switches the team's proxy
to them in one step (docker_proxy), soaks, and stops the old containers only after that. No request
is refused during a deploy, and a failed new version never receives traffic.
"""

from __future__ import annotations

import re
import time
from typing import Any

from elfctl.adapters.docker_gate import gate, probe
from elfctl.adapters.docker_proxy import TeamProxies, network_address
from elfctl.domain.rollout import RolloutReport
from elfctl.domain.team import SECRETS_DIR
from elfctl.errors import ElfError, InputError
from elfctl.redact import plain


def _memory_bytes(q: str | None) -> int | None:
    if not q:
        return None
    units = {
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "K": 10**3,
        "M": 10**6,
        "G": 10**9,
        "T": 10**12,
    }
    for suffix, mult in units.items():
        if q.endswith(suffix):
            return int(float(q[: -len(suffix)]) * mult)
    return int(float(q))


def _nano_cpus(q: str | None) -> int | None:
    if not q:
        return None
    return int(float(q[:-1]) * 1e6) if q.endswith("m") else int(float(q) * 1e9)


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
        self.proxy = TeamProxies(engine, network, prefix, base_image, publish_address)
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
        if spec.secret_files():
            self._secret_files_ready()  # a folder on disk is refused (exit 2) before anything starts
        names = [f"{self.prefix}-{team}-r{revision}-{i}" for i in range(max(1, spec.replicas))]
        try:
            self._start(spec, names, image, revision, env, secrets)
        except ElfError as exc:
            return self._refuse(names, f"could not start: {exc.message}", [], leftovers)
        self._phase("verifying")
        budget = min(deadline_s, spec.health.start_timeout_s)
        ok, reason, warnings = gate(self.engine, self.network, spec, names, budget, require_ready=True)
        if not ok:
            return self._refuse(names, f"health gate: {reason}", warnings, leftovers)
        if before_switch is not None:
            try:
                before_switch()
            except BaseException:
                self._remove(names)
                raise
        for n in names:
            self.engine.keep_running(n)
        failed = self.proxy.switch(team, names, spec.port, revision, image)
        if failed:
            return self._refuse(names, f"switch: {failed}", warnings, leftovers)
        self._phase("switched")
        if spec.health.soak_s > 0:
            soak_ok, soak_reason, more = gate(self.engine, self.network, spec, names, spec.health.soak_s,
                                              require_ready=False)
            warnings += [w for w in more if w not in warnings]
            if not soak_ok:  # back to what served before (or to nothing), then the new ones go
                before = (old_rev, old_image) if old_targets else (None, None)
                self.proxy.write_targets(team, old_targets, spec.port, *before)
                return self._refuse(names, f"soak after switch: {soak_reason}; switched back", warnings,
                                    leftovers, drain=True)
        retired = [n for n in old_targets if n not in names]
        self._retire(retired)
        return RolloutReport(True, reason, "", warnings, retired, leftovers)

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
        """Run the new replicas (no restart policy yet: a crash during the gate must show, not loop)."""
        files = spec.secret_files()
        values = {k: plain(v) for k, v in secrets.items()}
        full_env = {**spec.env, **env, **({f"{k}_FILE": path for k, path in files.items()} if files else values)}
        labels = self._labels(spec.name, "app", **{"elfctl.revision": str(revision), "elfctl.image": image})
        for n in names:
            self.engine.run(
                n,
                image,
                network=self.network,
                env=full_env,
                read_only=self.secret_files.write(n, {k: values[k] for k in files}, SECRETS_DIR)
                if files else None,
                labels=labels,
                restart=False,
                mem_limit=_memory_bytes(spec.resources.memory),
                nano_cpus=_nano_cpus(spec.resources.cpu),
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
        proxy = self.engine.inspect(self.proxy_name(team))
        for n in names + ([self.proxy_name(team)] if proxy else []):
            self.engine.remove(n, grace_s=2)  # a deliberate stop: give requests in flight a moment
        self._sweep_secret_files(team, set())
        return bool(names or proxy)

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
            state = (self.engine.inspect(n) or {}).get("State", {})
            if state.get("Running"):
                ready += 1
            else:
                worst, reason = "fail", f"{n} is not running"
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
            address = network_address(self.engine.inspect(name), self.network)
            if address is None:
                found.append((name, "fail", "container not found"))
                continue
            outcome, reason, _refused = probe(address, int(port), path, timeout)
            found.append((name, outcome, reason))
        return found

    def teams(self) -> list[str]:
        """Teams with a proxy on this engine (for infra down/status)."""
        found = self.engine.containers({"elfctl.prefix": self.prefix, "elfctl.role": "proxy"})
        return sorted({c["Labels"].get("elfctl.team", "") for c in found} - {""})
