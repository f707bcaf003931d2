"""DeployTarget for one Docker engine: blue/green beside the old containers behind a per-team proxy.

Users reach a team at one stable host port, published by a small proxy container
(`<prefix>-<team>`, busybox `nc -ll -e`, one forked relay per connection). The proxy reads its
targets (container names, resolved by Docker's DNS) from a file for every new connection, so the
switch is one atomic file rename: all new replicas at once, in-flight connections to the old ones
finish, and the old containers are stopped only after the soak window. No request is refused during
a deploy, and a failed new version never receives traffic.
"""

from __future__ import annotations

import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from elfctl.domain.health_gate import ReplicaGate, classify
from elfctl.domain.team import SECRETS_DIR, memory_bytes, nano_cpus
from elfctl.errors import ElfError, InputError, OperationFailed

PROXY_PORT = 8080  # inside the proxy container
STATE_PORT = 8081  # inside the proxy: tells what it serves (read-only; not published on the host)
STATE = "/run/elf"
END = "--- end\n"  # the last line of a complete state answer
READ_STATE = f"cat {STATE}/targets; echo ---; cat {STATE}/live 2>/dev/null; echo {END.strip()}"
PROXY_BOOT = f"""mkdir -p {STATE}; touch {STATE}/targets
cat > /proxy.sh <<'EOF'
set -- $(cat {STATE}/targets)
[ $# -gt 0 ] || exit 1
eval t=\\${{$(( RANDOM % $# + 1 ))}}
exec nc ${{t%:*}} ${{t#*:}}
EOF
echo '{READ_STATE}' > /state.sh
nc -ll -p {STATE_PORT} -e sh /state.sh &
exec nc -ll -p {PROXY_PORT} -e sh /proxy.sh"""


@dataclass
class DockerRollout:
    ok: bool
    reason: str
    logs: str = ""
    warnings: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)  # old replicas stopped after the switch
    leftovers: list[str] = field(default_factory=list)  # not serving when it started: retired too


def _reveal(value: Any) -> str:
    for attr in ("reveal", "get_secret_value", "value"):
        got = getattr(value, attr, None)
        if got is not None:
            return got() if callable(got) else str(got)
    return str(value)


class DockerTarget:
    name = "docker"
    switch_guard = True  # rollout() takes before_switch (the deploy service pushes meanwhile)

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
        self.publish_address = publish_address
        self.drain_s = drain_s
        self.stop_grace_s = stop_grace_s
        self.secret_files = secret_files  # adapters.secret_files.SecretFiles, for secrets_as: files
        self._progress = None
        self._state_port_ok = True
        self._read: dict[str, tuple] = {}  # team -> what serving() read from its proxy

    # Optional hook (not in the DeployTarget protocol): the deploy service records phases through it.
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
        return f"{self.prefix}-{team}"

    # --- protocol ---------------------------------------------------------------------------------

    def prepare(self) -> tuple[bool, str]:
        from elfctl.adapters.local_images import MANAGED, ensure_base_image

        made_net = self.engine.ensure_network(self.network, {**MANAGED, "elfctl.prefix": self.prefix})
        made_img, img_details = ensure_base_image(self.engine, self.base_image)
        changed = made_net or made_img
        net = f"created network {self.network}" if made_net else f"network {self.network} present"
        return changed, f"{net}; {img_details}"

    def _live(self, team: str, with_ports: bool = False) -> tuple[list[str], str | None, int | None]:
        """(target container names, or name:port with_ports, image, revision) the proxy sends
        traffic to."""
        proxy = self.engine.inspect(self.proxy_name(team))
        if not proxy or not proxy["State"].get("Running"):
            return [], None, None
        out = self._ask_state_port(proxy)
        if out is None:  # a proxy from before the state port, or not reachable from here
            _code, out = self.engine.exec(self.proxy_name(team), ["sh", "-c", READ_STATE])
            out = out.removesuffix(END)
        targets_txt, _, live = out.partition("---")
        targets = [t if with_ports else t.rsplit(":", 1)[0] for t in targets_txt.split()]
        parts = live.split()
        if len(parts) >= 2:
            return targets, parts[1], int(parts[0])
        return targets, None, None

    def _ask_state_port(self, proxy: dict) -> str | None:
        """The proxy's state over its state port (a TCP connect, ~1 ms, where `docker exec` takes
        ~50 ms); None unless a complete answer came (then the caller asks through exec)."""
        if not self._state_port_ok:
            return None
        nets = proxy["NetworkSettings"].get("Networks") or {}
        address = (nets.get(self.network) or next(iter(nets.values()), {})).get("IPAddress")
        if not address:
            return None
        chunks = []
        try:
            with socket.create_connection((address, STATE_PORT), timeout=1.0) as sock:
                while data := sock.recv(65536):
                    chunks.append(data)
        except TimeoutError:
            self._state_port_ok = False  # container addresses do not answer here (remote engine)
            return None
        except OSError:
            return None
        text = b"".join(chunks).decode("utf-8", "replace")
        return text.removesuffix(END) if text.endswith(END) else None

    def serving(self, team: str) -> str | None:
        live = self._live(team)
        targets, image, _rev = live
        if targets:
            # Deploy and rollback ask this under the team's lock right before rollout(): what a
            # running proxy said then still holds when it starts (only this rollout may change it),
            # which saves asking again (a `docker exec`, ~50 ms).
            self._read[team] = live
        return image if targets else None

    def host_port(self, team: str) -> int | None:
        proxy = self.engine.inspect(self.proxy_name(team))
        if not proxy:
            return None
        bound = (proxy["NetworkSettings"].get("Ports") or {}).get(f"{PROXY_PORT}/tcp") or []
        return int(bound[0]["HostPort"]) if bound else None

    def _ensure_proxy(self, spec) -> None:
        name = self.proxy_name(spec.name)
        found = self.engine.inspect(name)
        if found and found["State"].get("Running"):
            return
        if found:
            self.engine.start(name)
            return
        host_port = getattr(spec, "host_port", None) or None
        self.engine.run(
            name,
            self.base_image,
            network=self.network,
            labels=self._labels(spec.name, "proxy"),
            env={},
            command=["sh", "-c", PROXY_BOOT],
            ports={PROXY_PORT: (self.publish_address, host_port)},
        )

    def _write_targets(
        self, team: str, names: list[str], port: int, revision: int | None, image: str | None
    ) -> None:
        targets = " ".join(f"{n}:{port}" for n in names)
        live = f"{revision} {image}" if image else ""
        # Rename is atomic: a connection reads either the old list or the new one, never half.
        code, out = self.engine.exec(
            self.proxy_name(team),
            [
                "sh",
                "-c",
                f'echo "{targets}" > {STATE}/t.new && '
                f'echo "{live}" > {STATE}/live && mv {STATE}/t.new {STATE}/targets',
            ],
        )
        if code:
            raise OperationFailed(
                f"switching {team}'s proxy {self.proxy_name(team)} failed (exit {code}): {out.strip()[:300]}",
                hint=f"see `docker logs {self.proxy_name(team)}`",
            )

    def _switch(self, team: str, names: list[str], port: int, revision: int, image: str) -> str | None:
        """Point the proxy at `names`; None when it serves them, else why not. When the engine's
        answer is lost (a timeout), the proxy is asked what it serves rather than guessed."""
        try:
            self._write_targets(team, names, port, revision, image)
            return None
        except ElfError as exc:
            try:
                serving = self._live(team)[0]
            except ElfError:
                serving = []
            return None if serving == names else exc.message

    def _app_containers(self, team: str) -> list[dict]:
        return self.engine.containers(
            {"elfctl.prefix": self.prefix, "elfctl.team": team, "elfctl.role": "app"}
        )

    def _address(self, name: str) -> str | None:
        info = self.engine.inspect(name)
        if not info:
            return None
        nets = info["NetworkSettings"].get("Networks") or {}
        net = nets.get(self.network) or next(iter(nets.values()), {})
        return net.get("IPAddress") or None

    def _probe(self, address: str, port: int, path: str, timeout: float) -> tuple[str, str, bool]:
        """(outcome, reason, refused): refused means nothing listens yet."""
        try:
            with urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=timeout) as resp:
                outcome, reason = classify(resp.status, resp.read(65536))
                return outcome, reason, False
        except urllib.error.HTTPError as exc:
            outcome, reason = classify(exc.code, exc.read(65536) if exc.fp else b"")
            return outcome, reason, False
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            refused = isinstance(reason, ConnectionRefusedError) or "refused" in str(reason).lower()
            return "fail", f"no answer ({reason})", refused

    def _gate(
        self, spec, names: list[str], budget_s: float, require_ready: bool
    ) -> tuple[bool, str, list[str]]:
        """Probe every replica each period until all are ready (require_ready) or the budget ends
        (soak). Returns (ok, reason, warnings)."""
        h = spec.health
        gates = {n: ReplicaGate(h.success_threshold, h.failure_threshold) for n in names}
        addresses = {n: self._address(n) for n in names}
        deadline = time.monotonic() + budget_s
        while True:
            started = time.monotonic()
            for name, gate in gates.items():
                addr = addresses[name] or self._address(name)
                addresses[name] = addr
                if addr is None:
                    info = self.engine.inspect(name)
                    if info is None:
                        return False, f"{name}: container is gone", []
                    if not info["State"].get("Running"):
                        return (
                            False,
                            f"{name}: container exited with code {info['State'].get('ExitCode')}",
                            [],
                        )
                    continue
                outcome, reason, refused = self._probe(addr, spec.port, h.path, h.timeout_s)
                gate.record(outcome, reason, refused)
                if outcome == "fail":
                    info = self.engine.inspect(name) or {"State": {}}
                    state, restarts = info["State"], info.get("RestartCount", 0)
                    if not state.get("Running") or state.get("Restarting") or restarts:
                        return (
                            False,
                            (
                                f"{name}: container exited with code {state.get('ExitCode')}"
                                + (f" (restarted {restarts} times)" if restarts else "")
                            ),
                            [],
                        )
                if gate.failed:
                    return (
                        False,
                        (
                            f"{name}: {h.failure_threshold} consecutive failed health checks on {h.path} "
                            f"(last: {reason})"
                        ),
                        [],
                    )
            warnings = [w for g in gates.values() for w in g.warnings]
            if require_ready and all(g.ready for g in gates.values()):
                return (
                    True,
                    f"{len(names)}/{len(names)} replicas passed {h.success_threshold} health checks",
                    warnings,
                )
            if time.monotonic() >= deadline:
                if not require_ready:
                    return True, f"soak {budget_s:g}s passed", warnings
                slow = [f"{n}: {g.last or 'no answer'}" for n, g in gates.items() if not g.ready]
                return False, f"not healthy within {budget_s:g}s ({'; '.join(slow)})", warnings
            time.sleep(max(0.0, min(h.period_s - (time.monotonic() - started), deadline - time.monotonic())))

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
    ) -> DockerRollout:
        """before_switch: called once the new replicas passed the gate; if it raises, they are
        removed, nothing is switched, and the error goes up."""
        team = spec.name
        self.engine.ensure_network(self.network, {"elfctl.managed": "true", "elfctl.prefix": self.prefix})
        read = self._read.pop(team, None)
        self._ensure_proxy(spec)
        old_targets, old_image, old_rev = read or self._live(team)
        # Containers the proxy does not serve: replaced replicas still in their stop grace (a deploy
        # shortly after another), or those of a killed deploy or a helper that died. Each gets the
        # same detached stop as a replaced replica: two stops of one container end at the first
        # one's deadline, so none loses its grace, and none costs this deploy any time.
        live_set = set(old_targets)
        existing = [c["Names"][0].lstrip("/") for c in self._app_containers(team)]
        leftovers = [n for n in existing if n not in live_set]
        if leftovers and not self.engine.retire_later(leftovers, after_s=0, grace_s=self.stop_grace_s):
            self._remove(leftovers)
        self._sweep_secret_files(team, set(existing))
        self._phase("starting")
        files = spec.secret_files()
        if files:
            self._secret_files_ready()  # a folder on disk is refused before anything starts
        values = {k: _reveal(v) for k, v in secrets.items()}
        full_env = {**spec.env, **env, **({f"{k}_FILE": path for k, path in files.items()} if files else values)}
        names = [f"{self.prefix}-{team}-r{revision}-{i}" for i in range(max(1, spec.replicas))]
        try:
            for n in names:
                self.engine.run(
                    n,
                    image,
                    network=self.network,
                    env=full_env,
                    read_only=self.secret_files.write(n, {k: values[k] for k in files}, SECRETS_DIR)
                    if files else None,
                    labels=self._labels(
                        team, "app", **{"elfctl.revision": str(revision), "elfctl.image": image}
                    ),
                    restart=False,  # a crash during the gate must show, not loop
                    mem_limit=memory_bytes(spec.resources.memory),
                    nano_cpus=nano_cpus(spec.resources.cpu),
                )
        except ElfError as exc:
            logs = self._log_tail(names)
            self._remove(names)
            return DockerRollout(False, f"could not start: {exc.message}", logs, leftovers=leftovers)
        self._phase("verifying")
        budget = min(deadline_s, spec.health.start_timeout_s)
        ok, reason, warnings = self._gate(spec, names, budget, require_ready=True)
        if not ok:
            logs = self._log_tail(names)
            self._remove(names)
            return DockerRollout(False, f"health gate: {reason}", logs, warnings, leftovers=leftovers)
        if before_switch is not None:
            try:
                before_switch()
            except BaseException:
                self._remove(names)
                raise
        for n in names:
            self.engine.keep_running(n)
        failed = self._switch(team, names, spec.port, revision, image)
        if failed:
            logs = self._log_tail(names)
            self._remove(names)
            return DockerRollout(False, f"switch: {failed}", logs, warnings, leftovers=leftovers)
        self._phase("switched")
        if spec.health.soak_s > 0:
            soak_ok, soak_reason, more = self._gate(spec, names, spec.health.soak_s, require_ready=False)
            warnings += [w for w in more if w not in warnings]
            if not soak_ok:
                logs = self._log_tail(names)
                if old_targets:
                    self._write_targets(team, old_targets, spec.port, old_rev, old_image)
                else:
                    self._write_targets(team, [], spec.port, None, None)
                time.sleep(self.drain_s)
                self._remove(names)
                return DockerRollout(
                    False, f"soak after switch: {soak_reason}; switched back", logs, warnings, [], leftovers
                )
        retired = [n for n in old_targets if n not in names]
        self._retire(retired)
        return DockerRollout(True, reason, "", warnings, retired, leftovers)

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
        targets, _image, _rev = self._live(team)
        if not targets:
            return iter(())
        return self.engine.logs(targets[0], tail=tail, follow=follow)

    def status(self, team: str) -> dict[str, Any]:
        endpoints, image, rev = self._live(team, with_ports=True)
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
            endpoints = self._live(team, with_ports=True)[0]
        found = []
        for target in endpoints:
            name, _, port = target.rpartition(":")
            address = self._address(name)
            if address is None:
                found.append((name, "fail", "container not found"))
                continue
            outcome, reason, _refused = self._probe(address, int(port), path, timeout)
            found.append((name, outcome, reason))
        return found

    def teams(self) -> list[str]:
        """Teams with a proxy on this engine (for infra down/status)."""
        found = self.engine.containers({"elfctl.prefix": self.prefix, "elfctl.role": "proxy"})
        return sorted({c["Labels"].get("elfctl.team", "") for c in found} - {""})
