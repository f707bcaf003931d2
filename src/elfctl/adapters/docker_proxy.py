"""The per-team proxy container of the Docker target: how it is started, asked and switched.

Users reach a team at one stable host port, published by a small proxy container
(`<prefix>-<team>`, busybox `nc -ll -e`, one forked relay per connection). The proxy reads its
targets (container names, resolved by Docker's DNS) from a file for every new connection, so the
switch is one atomic file rename: all new replicas at once, and in-flight connections to the old
ones finish.

The proxy publishes team.yaml's `host_port`. When it changes, a second proxy starts on the new port
beside the old one with the same targets, takes the proxy's name, and the old one is removed after a
drain. A port that is taken is refused before anything changes, and a proxy that could not start is
never left behind.
"""

from __future__ import annotations

import os
import socket
import time

from elfctl.adapters.port_holder import holder
from elfctl.errors import Conflict, ElfError, OperationFailed

PROXY_PORT = 8080  # inside the proxy container
STATE_PORT = 8081  # inside the proxy: tells what it serves (read-only; not published on the host)
STATE = "/run/elf"
END = "--- end\n"  # the last line of a complete state answer
READ_STATE = f"cat {STATE}/targets; echo ---; cat {STATE}/live 2>/dev/null; echo {END.strip()}"
TAKEN = ("port is already allocated", "address already in use")  # the engine's words for a taken port
# A proxy made by a port move starts with the state it takes over (ELF_TARGETS, ELF_LIVE), so no
# connection to its port finds it empty; a restart keeps the state written since.
PROXY_BOOT = f"""mkdir -p {STATE}
[ -e {STATE}/targets ] || echo "$ELF_TARGETS" > {STATE}/targets
[ -e {STATE}/live ] || [ -z "$ELF_LIVE" ] || echo "$ELF_LIVE" > {STATE}/live
cat > /proxy.sh <<'EOF'
set -- $(cat {STATE}/targets)
[ $# -gt 0 ] || exit 1
eval t=\\${{$(( RANDOM % $# + 1 ))}}
exec nc ${{t%:*}} ${{t#*:}}
EOF
echo '{READ_STATE}' > /state.sh
nc -ll -p {STATE_PORT} -e sh /state.sh &
exec nc -ll -p {PROXY_PORT} -e sh /proxy.sh"""


def network_address(info: dict | None, network: str) -> str | None:
    """A container's address on `network` (else on its first network), from `docker inspect`."""
    if not info:
        return None
    nets = info["NetworkSettings"].get("Networks") or {}
    return (nets.get(network) or next(iter(nets.values()), {})).get("IPAddress") or None


class TeamProxies:
    """The team proxies of one Docker target (engine, network, name prefix)."""

    def __init__(self, engine, network: str, prefix: str, base_image: str, publish_address: str,
                 drain_s: float = 0.2):
        self.engine = engine
        self.drain_s = drain_s
        self.network = network
        self.prefix = prefix
        self.base_image = base_image
        self.publish_address = publish_address
        self.state_port_ok = True

    def name(self, team: str) -> str:
        return f"{self.prefix}-{team}"

    def live(self, team: str, with_ports: bool = False) -> tuple[list[str], str | None, int | None]:
        """(target container names, or name:port with_ports, image, revision) the proxy sends
        traffic to."""
        proxy = self.engine.inspect(self.name(team))
        if not proxy or not proxy["State"].get("Running"):
            return [], None, None
        out = self.ask_state_port(proxy)
        if out is None:  # a proxy from before the state port, or not reachable from here
            _code, out = self.engine.exec(self.name(team), ["sh", "-c", READ_STATE])
            out = out.removesuffix(END)
        targets_txt, _, live = out.partition("---")
        targets = [t if with_ports else t.rsplit(":", 1)[0] for t in targets_txt.split()]
        parts = live.split()
        if len(parts) >= 2:
            return targets, parts[1], int(parts[0])
        return targets, None, None

    def ask_state_port(self, proxy: dict) -> str | None:
        """The proxy's state over its state port (a TCP connect, ~1 ms, where `docker exec` takes
        ~50 ms); None unless a complete answer came (then the caller asks through exec)."""
        if not self.state_port_ok:
            return None
        address = network_address(proxy, self.network)
        if not address:
            return None
        chunks = []
        try:
            with socket.create_connection((address, STATE_PORT), timeout=1.0) as sock:
                while data := sock.recv(65536):
                    chunks.append(data)
        except TimeoutError:
            self.state_port_ok = False  # container addresses do not answer here (remote engine)
            return None
        except OSError:
            return None
        text = b"".join(chunks).decode("utf-8", "replace")
        return text.removesuffix(END) if text.endswith(END) else None

    def host_port(self, team: str) -> int | None:
        return _bound(self.engine.inspect(self.name(team)))

    def names(self, team: str) -> list[str]:
        """Every proxy container of the team: its proxy, and one a killed move left behind."""
        found = self.engine.containers({"elfctl.prefix": self.prefix, "elfctl.team": team, "elfctl.role": "proxy"})
        return [c["Names"][0].lstrip("/") for c in found]

    def ensure(self, spec, labels: dict[str, str]) -> None:
        """The team's proxy running on team.yaml's host_port (none: the port it has, else any):
        started again, created, or moved to the new port. Conflict (exit 1) when the port is taken,
        with nothing changed."""
        name = self.name(spec.name)
        wanted = getattr(spec, "host_port", None) or None
        found = self._settle_move(name)
        if found and found["State"].get("Running"):
            if wanted and _bound(found) != wanted:
                self._move(spec, labels, _bound(found), wanted)
            return
        if found:  # stopped: start it where it was bound, unless team.yaml says elsewhere
            if not wanted or _bound(found) == wanted:
                try:
                    self.engine.start(name)
                    return
                except OperationFailed:
                    pass  # its port is taken now: made anew below, which says so clearly
            self.engine.remove(name, grace_s=0)
        self._run(spec, name, labels, wanted)

    @staticmethod
    def _helpers(name: str) -> tuple[str, str]:
        """The names of a move's new and old proxy: with a dot, so never another team's proxy."""
        return f"{name}.next", f"{name}.old"

    def _settle_move(self, name: str) -> dict | None:
        """Finish what a killed move left: its new proxy never took over (removed); the old one
        was renamed but not replaced (it takes its name back) or not yet removed (removed)."""
        nxt, old = self._helpers(name)
        self.engine.remove(nxt, grace_s=0)
        found = self.engine.inspect(name)
        if found is None and self.engine.inspect(old):
            self.engine.rename(old, name)
            return self.engine.inspect(name)
        self.engine.remove(old, grace_s=0)
        return found

    def _run(self, spec, name: str, labels: dict[str, str], host_port: int | None,
             unchanged: str = "nothing was started", state: dict[str, str] | None = None) -> None:
        try:
            self.engine.run(
                name,
                self.base_image,
                network=self.network,
                labels=labels,
                env=state or {},
                command=["sh", "-c", PROXY_BOOT],
                ports={PROXY_PORT: (self.publish_address, host_port)},
            )
        except OperationFailed as exc:  # the engine removed the container that could not start
            if host_port and any(t in exc.message for t in TAKEN):
                raise self._taken(spec, host_port, unchanged) from None
            raise

    def _taken(self, spec, port: int, unchanged: str) -> Conflict:
        who = self._holder(port)
        return Conflict(
            f"host port {port} (host_port in {spec.path}) is taken{f' by {who}' if who else ''}; "
            f"{unchanged}",
            hint=f"free port {port}, or set another host_port in {spec.path} "
            f"(or none: Docker then picks a free port)",
        )

    def _holder(self, port: int) -> str | None:
        """What listens on `port`: a container of this engine, else (the engine being on this
        machine) a local process; None when unknown."""
        try:
            for c in self.engine.containers({}, all_=False):
                if any(p.get("PublicPort") == port for p in c.get("Ports") or []):
                    return f"container {c['Names'][0].lstrip('/')}"
        except ElfError:
            pass
        host = getattr(self.engine, "base_url", None) or os.environ.get("DOCKER_HOST") or ""
        return holder(port) if not host or host.startswith("unix://") else None

    def _move(self, spec, labels: dict[str, str], old_port: int | None, port: int) -> None:
        """Publish on `port` instead: a new proxy beside the old one, serving what it serves, takes
        the proxy's name once it listens; the old one goes after the drain (its port with it)."""
        name = self.name(spec.name)
        nxt, old = self._helpers(name)
        targets, image, revision = self.live(spec.name, with_ports=True)
        state = {"ELF_TARGETS": " ".join(targets), "ELF_LIVE": f"{revision} {image}" if image else ""}
        self._run(spec, nxt, labels, port, f"the team keeps serving on host port {old_port}", state)
        try:
            self._listening(nxt)
            self.engine.rename(name, old)
        except BaseException:
            self.engine.remove(nxt, grace_s=0)
            raise
        try:
            self.engine.rename(nxt, name)
        except BaseException:
            self.engine.rename(old, name)  # the old proxy serves on as before; the new one goes
            self.engine.remove(nxt, grace_s=0)
            raise
        time.sleep(self.drain_s)  # requests sent to the old port just before the move finish
        self.engine.remove(old, grace_s=0)

    def _listening(self, name: str, timeout_s: float = 5.0) -> None:
        """Wait until the proxy accepts connections (a connect from here to its address; skipped
        when container addresses are not reachable from here)."""
        address = network_address(self.engine.inspect(name), self.network)
        deadline = time.monotonic() + timeout_s
        while address and self.state_port_ok:
            try:
                with socket.create_connection((address, PROXY_PORT), timeout=1.0):
                    return
            except TimeoutError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise OperationFailed(f"the new proxy {name} does not listen on {PROXY_PORT}",
                                          hint=f"see `docker logs {name}`") from None
                time.sleep(0.05)

    def write_targets(
        self, team: str, names: list[str], port: int, revision: int | None, image: str | None
    ) -> None:
        self._write(self.name(team), " ".join(f"{n}:{port}" for n in names),
                    f"{revision} {image}" if image else "")

    def _write(self, proxy: str, targets: str, live: str) -> None:
        # Rename is atomic: a connection reads either the old list or the new one, never half.
        code, out = self.engine.exec(
            proxy,
            [
                "sh",
                "-c",
                f'echo "{targets}" > {STATE}/t.new && '
                f'echo "{live}" > {STATE}/live && mv {STATE}/t.new {STATE}/targets',
            ],
        )
        if code:
            raise OperationFailed(
                f"switching the proxy {proxy} failed (exit {code}): {out.strip()[:300]}",
                hint=f"see `docker logs {proxy}`",
            )

    def switch(self, team: str, names: list[str], port: int, revision: int, image: str) -> str | None:
        """Point the proxy at `names`; None when it serves them, else why not. When the engine's
        answer is lost (a timeout), the proxy is asked what it serves rather than guessed."""
        try:
            self.write_targets(team, names, port, revision, image)
            return None
        except ElfError as exc:
            try:
                serving = self.live(team)[0]
            except ElfError:
                serving = []
            return None if serving == names else exc.message


def _bound(info: dict | None) -> int | None:
    """The host port a proxy publishes (running), else the one it asked for (stopped); None when
    none, or when Docker was left to pick one that is not bound now."""
    if not info:
        return None
    key = f"{PROXY_PORT}/tcp"
    bound = ((info.get("NetworkSettings") or {}).get("Ports") or {}).get(key) \
        or ((info.get("HostConfig") or {}).get("PortBindings") or {}).get(key) or []
    return int(bound[0]["HostPort"]) if bound and bound[0].get("HostPort") else None
