"""The gateway's background prober against real HTTP endpoints on loopback (a healthy team, one that
dies, one that accepts and never answers, one that trickles its answer) and a real store on both
dialects; then inside a real `elfctl gateway serve` process, where nothing else probes: an idle
healthy team stays passing well past its TTL and a dead one goes critical, each change a trail row."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest

from elfctl.adapters import http_health
from elfctl.domain.registry import Entry
from elfctl.services.actions import trail
from elfctl.services.registry import entries as reg
from elfctl.services.registry.prober import Prober
from tests.deploy.conftest import docker_env, engine, registry_address  # noqa: F401 (fixtures)


class Team:
    """A team's health endpoint on 127.0.0.1: `mode` is ok | warn | down (HTTP 503) | slow (answers after
    `delay_s`); counts requests (and notes when each came) and the most served at once."""

    def __init__(self, mode: str = "ok", delay_s: float = 0.0):
        self.mode, self.delay_s, self.hits, self.now, self.most = mode, delay_s, 0, 0, 0
        self.times: list[float] = []  # when each request arrived (time.monotonic)
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                with outer.lock:
                    outer.times.append(time.monotonic())
                    outer.hits += 1
                    outer.now += 1
                    outer.most = max(outer.most, outer.now)
                try:
                    if outer.delay_s:
                        time.sleep(outer.delay_s)
                    code, doc = {"ok": (200, {"status": "pass"}), "warn": (200, {"status": "warn"}),
                                 "down": (503, {"status": "fail"}), "slow": (200, {"status": "pass"})}[outer.mode]
                    body = json.dumps(doc).encode()
                    self.send_response(code)
                    self.send_header("Content-Type", "application/health+json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    with outer.lock:
                        outer.now -= 1

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Silent:
    """Accepts connections and never answers (`trickle`: sends one byte of a status line every 0.1 s)."""

    def __init__(self, trickle: bool = False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.trickle, self.closed = trickle, threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            if self.trickle:
                threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn) -> None:
        for byte in b"HTTP/1.0 200 OK\r\nX-Slow: " + b"x" * 10_000:
            if self.closed.wait(0.1):
                return
            try:
                conn.send(bytes([byte]))
            except OSError:
                return

    def stop(self) -> None:
        self.closed.set()
        self.sock.close()
        for c in self.held:
            c.close()


@pytest.fixture
def teams():
    made = []

    def make(kind=Team, *args, **kw):
        t = kind(*args, **kw)
        made.append(t)
        return t

    yield make
    for t in made:
        t.stop()


def deployed(store, name: str, port: int, ttl_s: float = 60, timeout_s: float = 2.0, network: bool = True) -> None:
    """An entry as deploy writes it: the network endpoint (a Docker name that does not resolve here)
    and the host's published port."""
    endpoints = {"host": f"http://127.0.0.1:{port}"}
    if network:
        endpoints["network"] = f"http://elfctl-nosuch-{name}:8080"
    reg.register(store, Entry(name, kind="team", url=endpoints.get("network", endpoints["host"]), endpoints=endpoints,
                              ttl_s=ttl_s, source="deploy", metadata={"health_path": "/health",
                                                                      "health_timeout_s": timeout_s}))


def prober(store, period_s: float = 0.0, concurrency: int = 8, jitter=lambda: 0.0) -> Prober:
    return Prober(store, http_health.probe, http_health.Unresolved, period_s, concurrency, jitter=jitter)


def test_a_round_heartbeats_each_team_from_its_answer(reg_store, teams):
    ok, warn, down = teams(Team, "ok"), teams(Team, "warn"), teams(Team, "down")
    closed = teams(Team, "ok")
    closed.stop()  # nothing listens on its port any more
    for name, t in (("seo", ok), ("writer", warn), ("critic", down), ("gone", closed)):
        deployed(reg_store, name, t.port)
    reg.register(reg_store, Entry("by-hand", kind="team", url=f"http://127.0.0.1:{ok.port}", ttl_s=60))  # not deploy's

    done = {n: (o, note) for n, o, note in prober(reg_store).round()}
    assert {n: o for n, (o, _) in done.items()} == {"seo": "pass", "writer": "warn", "critic": "fail", "gone": "fail"}
    # the host endpoint, after the network one did not resolve
    assert done["critic"][1] == f"probe: GET http://127.0.0.1:{down.port}/health: HTTP 503"
    assert "no answer" in done["gone"][1]
    status = {e.name: e.status for e in reg.find(reg_store)}
    assert status == {"seo": "passing", "writer": "warning", "critic": "critical", "gone": "critical",
                      "by-hand": "passing"}
    rows = {(r.actor, r.target, r.trigger) for r in trail.recent(reg_store) if r.resource == "registry"}
    assert ("gateway probe", "critic", "status passing -> critical") in rows
    assert ("gateway probe", "writer", "status passing -> warning") in rows
    assert not any(t == "seo" and a == "gateway probe" for a, t, _ in rows)  # passing stayed passing: no row


def test_a_team_probed_within_the_period_is_not_probed_again(reg_store, teams):
    """After a restart the teams probed before it are not due: no storm, one probe per period."""
    t = teams(Team, "ok")
    deployed(reg_store, "seo", t.port)
    p = prober(reg_store, period_s=3600)
    assert p.round() == []  # registered (a heartbeat) just now: not due
    assert t.hits == 0
    assert [n for n, _, _ in prober(reg_store, period_s=0).round()] == ["seo"]
    assert t.hits == 1
    assert prober(reg_store, period_s=3600).round() == []  # a new process (a restart) finds it fresh
    assert t.hits == 1


def test_probes_run_at_most_concurrency_at_once(store_url, reg_store, teams):
    """Thirty teams due at once (a platform after an outage) are probed four at a time."""
    slow = teams(Team, "slow", delay_s=0.2)
    for i in range(30):
        deployed(reg_store, f"team-{i}", slow.port, network=False)
    done = prober(reg_store, concurrency=4).round()
    assert len(done) == 30 and {o for _, o, _ in done} == {"pass"}
    assert slow.hits == 30 and slow.most == 4


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickle"])
def test_a_hung_endpoint_times_out_and_holds_no_other_team_up(reg_store, teams, trickle):
    hung, ok = teams(Silent, trickle), teams(Team, "ok")
    deployed(reg_store, "hung", hung.port, timeout_s=3.0, network=False)
    deployed(reg_store, "seo", ok.port, network=False)
    p = prober(reg_store, concurrency=2)
    result: list = []
    worker = threading.Thread(target=lambda: result.extend(p.round()))
    worker.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not reg.get(reg_store, "seo").note.startswith("probe:"):
        time.sleep(0.05)
    # seo's heartbeat is written while the hung team's probe still waits: its answer is not held back
    assert reg.get(reg_store, "seo").note == f"probe: GET http://127.0.0.1:{ok.port}/health: HTTP 200, status 'pass'"
    assert worker.is_alive()
    worker.join(15)
    assert not worker.is_alive()
    assert dict((n, (o, note)) for n, o, note in result)["hung"] == (
        "fail", f"probe: GET http://127.0.0.1:{hung.port}/health: no answer within 3s")
    assert reg.get(reg_store, "hung").status == "critical"


class Endless(Silent):
    """Answers 200 at once, then a body that never ends."""

    def __init__(self):
        super().__init__(trickle=True)  # every connection is answered: by _answer below

    def _answer(self, conn) -> None:
        try:
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
            while not self.closed.is_set():
                conn.sendall(b"x" * 65536)
        except OSError:
            return


def test_an_endless_answer_is_read_to_its_limit_only(reg_store, teams):
    endless = teams(Endless)
    deployed(reg_store, "flood", endless.port, timeout_s=5.0, network=False)
    (done,) = prober(reg_store).round()
    # its status line said 200 and the body was cut at 64 KiB: read to the end, it would have timed out (fail)
    assert done[:2] == ("flood", "pass")


def test_an_entry_reachable_from_nowhere_here_is_left_to_its_ttl(reg_store, caplog):
    """A cluster's team seen from a gateway outside it: its name does not resolve, so the prober
    vouches for nothing (no heartbeat either way) and says so once."""
    reg.register(reg_store, Entry("far", kind="team", url="http://far.elfctl.svc:8080",
                                  endpoints={"network": "http://far.elfctl.svc:8080"}, ttl_s=60, source="deploy",
                                  heartbeat_at="2020-01-01T00:00:00+00:00"))
    p = prober(reg_store)
    with caplog.at_level("WARNING", logger="elfctl.gateway.prober"):
        assert p.round() == [] and p.round() == []
    assert [r.getMessage() for r in caplog.records].count(
        "registry prober: team far not probed: network: far.elfctl.svc: Name or service not known") == 1
    assert reg.get(reg_store, "far").heartbeat_at.startswith("2020-01-01")


def test_stop_before_the_first_round_probes_nothing(reg_store, teams):
    """The first round waits a random part of the period (gateways started together spread out)."""
    t = teams(Team, "ok")
    deployed(reg_store, "seo", t.port, network=False)
    p = prober(reg_store, period_s=30, jitter=lambda: 0.5).start()
    p.stop()
    assert not p._thread.is_alive() and t.hits == 0


def test_the_gateway_keeps_an_idle_team_passing_past_its_ttl(store_url, reg_store, teams, gateways, monkeypatch):
    """`elfctl gateway serve` alone: no registry read, no heartbeat from the team. A 2 s TTL passes
    three times over and the healthy team is still passing; the one whose endpoint dies goes critical."""
    monkeypatch.setenv("ELFCTL_DISCOVERY_PROBE_PERIOD_S", "0.5")
    ok, dying = teams(Team, "ok"), teams(Team, "ok")
    deployed(reg_store, "seo", ok.port, ttl_s=2)
    deployed(reg_store, "writer", dying.port, ttl_s=2)
    gateways(store_url)
    time.sleep(6)  # three TTLs: without the prober both would be critical by now
    for name in ("seo", "writer"):
        e = reg.get(reg_store, name)
        assert e.status == "passing" and e.note.startswith("probe: GET http://127.0.0.1:"), (name, e)
    assert ok.hits >= 3
    dying.stop()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and reg.get(reg_store, "writer").status != "critical":
        time.sleep(0.1)
    e = reg.get(reg_store, "writer")
    assert e.status == "critical" and "no answer" in e.note
    assert reg.get(reg_store, "seo").status == "passing"
    rows = [(r.actor, r.trigger) for r in trail.recent(reg_store, team="writer") if r.resource == "registry"]
    assert ("gateway probe", "status passing -> critical") in rows


def test_the_gateway_probes_nothing_with_gateway_probes_off(store_url, reg_store, teams, gateways, monkeypatch):
    monkeypatch.setenv("ELFCTL_DISCOVERY_PROBE_PERIOD_S", "0.2")
    monkeypatch.setenv("ELFCTL_DISCOVERY_GATEWAY_PROBES", "false")
    t = teams(Team, "ok")
    deployed(reg_store, "seo", t.port, ttl_s=1)
    gateways(store_url)
    time.sleep(2)
    assert t.hits == 0 and reg.get(reg_store, "seo").status == "critical"


def test_a_docker_deployed_team_is_kept_alive_by_the_gateway_and_goes_critical_when_killed(  # noqa: F811
        project, docker_env, gateways, monkeypatch):  # noqa: F811
    """A real team on the real engine with a 3 s TTL: only the gateway probes it (through its
    published port: its network name does not resolve on this machine). Idle, it stays passing past
    the TTL; `docker kill` of its replica makes it critical within a few periods."""
    import subprocess

    from elfctl import config
    from elfctl.bootstrap import open_store
    from tests.conftest import run_elfctl
    from tests.deploy.conftest import make_team

    tag = docker_env["ELFCTL_DEPLOY_PREFIX"][4:]
    name = f"t{tag}-probed"
    env = {**docker_env, "ELFCTL_DISCOVERY_TEAM_TTL_S": "3"}
    make_team(project, env, name)
    assert run_elfctl("deploy", name, cwd=project, env=env, timeout=300).returncode == 0
    store = open_store(config.load(cwd=project))
    try:
        monkeypatch.setenv("ELFCTL_DISCOVERY_PROBE_PERIOD_S", "0.5")
        gateways(store.display_url)
        time.sleep(7)  # more than twice the TTL, and nothing but the gateway probes
        e = reg.get(store, name)
        assert e.status == "passing" and e.note.startswith("probe: GET http://127.0.0.1:"), e
        subprocess.run(["docker", "kill", f"{docker_env['ELFCTL_DEPLOY_PREFIX']}-{name}-r1-0"], check=True,
                       capture_output=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and reg.get(store, name).status != "critical":
            time.sleep(0.2)
        e = reg.get(store, name)
        assert e.status == "critical" and e.note.startswith("probe: GET http://127.0.0.1:"), e
        rows = [(r.actor, r.trigger) for r in trail.recent(store, team=name) if r.resource == "registry"]
        assert ("gateway probe", "status passing -> critical") in rows
    finally:
        store.close()
