"""The per-team proxy container of the Docker target: how it is started, asked and switched.

Users reach a team at one stable host port, published by a small proxy container
(`<prefix>-<team>`, busybox `nc -ll -e`, one forked relay per connection). The proxy reads its
targets (container names, resolved by Docker's DNS) from a file for every new connection, so the
switch is one atomic file rename: all new replicas at once, and in-flight connections to the old
ones finish.
"""

from __future__ import annotations

import socket

from elfctl.errors import ElfError, OperationFailed

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


def network_address(info: dict | None, network: str) -> str | None:
    """A container's address on `network` (else on its first network), from `docker inspect`."""
    if not info:
        return None
    nets = info["NetworkSettings"].get("Networks") or {}
    return (nets.get(network) or next(iter(nets.values()), {})).get("IPAddress") or None


class TeamProxies:
    """The team proxies of one Docker target (engine, network, name prefix)."""

    def __init__(self, engine, network: str, prefix: str, base_image: str, publish_address: str):
        self.engine = engine
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
        proxy = self.engine.inspect(self.name(team))
        if not proxy:
            return None
        bound = (proxy["NetworkSettings"].get("Ports") or {}).get(f"{PROXY_PORT}/tcp") or []
        return int(bound[0]["HostPort"]) if bound else None

    def ensure(self, spec, labels: dict[str, str]) -> None:
        """The team's proxy running: started again, or created (on spec.host_port, else any port)."""
        name = self.name(spec.name)
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
            labels=labels,
            env={},
            command=["sh", "-c", PROXY_BOOT],
            ports={PROXY_PORT: (self.publish_address, host_port)},
        )

    def write_targets(
        self, team: str, names: list[str], port: int, revision: int | None, image: str | None
    ) -> None:
        targets = " ".join(f"{n}:{port}" for n in names)
        live = f"{revision} {image}" if image else ""
        # Rename is atomic: a connection reads either the old list or the new one, never half.
        code, out = self.engine.exec(
            self.name(team),
            [
                "sh",
                "-c",
                f'echo "{targets}" > {STATE}/t.new && '
                f'echo "{live}" > {STATE}/live && mv {STATE}/t.new {STATE}/targets',
            ],
        )
        if code:
            raise OperationFailed(
                f"switching {team}'s proxy {self.name(team)} failed (exit {code}): {out.strip()[:300]}",
                hint=f"see `docker logs {self.name(team)}`",
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
