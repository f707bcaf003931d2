"""`elfctl health` component `gateway`, on Docker: the real gateway (`elfctl gateway serve`)
answering at gateway.host:gateway.port passes; nothing there and no gateway container is `not
configured` (a warning); a gateway container that does not answer fails; something else on the port
fails; the gateway's own warning is passed on."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import pytest

from tests import realservices
from tests.conftest import run_elfctl
from tests.deploy.conftest import engine  # noqa: F401


@pytest.fixture
def gw_project(project):
    """A project with a team (so the Docker side and the gateway are checked), its own names on the
    shared dockerd, and a free gateway port."""
    (project / "teams" / "web").mkdir(parents=True)
    (project / "teams" / "web" / "team.yaml").write_text("name: web\n")
    env = {"ELFCTL_DEPLOY_PREFIX": f"elfh{uuid.uuid4().hex[:8]}", "ELFCTL_GATEWAY_PORT": str(realservices.free_port())}
    assert run_elfctl("db", "migrate", cwd=project, env=env).returncode == 0
    return project, env


def _gateway(project, env) -> dict:
    proc = run_elfctl("health", "--component", "gateway", "--json", cwd=project, env=env, timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    [check] = json.loads(proc.stdout)["checks"]["gateway"]
    return {**check, "rc": proc.returncode}


def test_real_gateway_passes_and_a_stopped_one_is_not_configured(gw_project):
    project, env = gw_project
    url = f"http://127.0.0.1:{env['ELFCTL_GATEWAY_PORT']}/health"
    proc = subprocess.Popen([sys.executable, "-m", "elfctl", "gateway", "serve"], cwd=project,
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "gateway did not start"
                time.sleep(0.2)
        check = _gateway(project, env)
        assert check["rc"] == 0 and check["status"] == "pass", check
        assert check["observedValue"] == 200 and url in check["output"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    check = _gateway(project, env)
    assert check["rc"] == 0 and check["status"] == "warn", check
    assert check["output"].startswith("not configured:") and url in check["output"]
    assert "elfctl infra up" in check["hint"]
    strict = run_elfctl("health", "--component", "gateway", "--strict", cwd=project, env=env)
    assert strict.returncode == 1


def test_gateway_container_that_does_not_answer_fails(gw_project, engine):
    from elfctl.adapters.local_images import ensure_base_image

    project, env = gw_project
    base = f"{env['ELFCTL_DEPLOY_PREFIX']}/base:busybox"
    ensure_base_image(engine, base)
    name = f"{env['ELFCTL_DEPLOY_PREFIX']}-gateway"
    engine.api.create_container(base, ["sleep", "300"], name=name, labels={"elfctl.prefix": env["ELFCTL_DEPLOY_PREFIX"]})
    engine.api.start(name)
    try:
        check = _gateway(project, env)
        assert check["rc"] == 1 and check["status"] == "fail", check
        assert f"container {name} runs, but" in check["output"] and f"docker logs {name}" in check["hint"]
    finally:
        engine.remove(name, grace_s=0)
        engine.remove_image(base)


class _Answer(http.server.BaseHTTPRequestHandler):
    status, body = 200, b""

    def do_GET(self):  # noqa: N802
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status, body, expect, said", [
    (404, b"<html>not found</html>", "fail", "answered HTTP 404 without an IETF health document"),
    (200, json.dumps({"status": "warn", "checks": {"llm:openai": [
        {"status": "warn", "output": "circuit open"}]}}).encode(), "warn", "llm:openai: warn circuit open"),
    (503, json.dumps({"status": "fail", "checks": {"store": [{"status": "fail"}]}}).encode(), "fail", "store: fail"),
])
def test_what_answers_on_the_port_decides(gw_project, status, body, expect, said):
    """Something else on the port is not a gateway; a gateway's own warn or fail (a 503 carrying its
    health document) is passed on with the checks that say why."""
    project, env = gw_project
    handler = type("H", (_Answer,), {"status": status, "body": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(env["ELFCTL_GATEWAY_PORT"])), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        check = _gateway(project, env)
    finally:
        server.shutdown()
        server.server_close()
    assert check["status"] == expect and said in check["output"], check
    assert check["rc"] == (1 if expect == "fail" else 0)


def test_a_port_that_accepts_and_never_answers_fails(gw_project):
    """Not `not configured`: something holds the port and hangs (a stuck gateway, say)."""
    import socket

    project, env = gw_project
    sock = socket.create_server(("127.0.0.1", int(env["ELFCTL_GATEWAY_PORT"])))  # listens, never accepts
    try:
        check = _gateway(project, env)
    finally:
        sock.close()
    assert check["rc"] == 1 and check["status"] == "fail", check
    assert "accepted the connection but did not answer within 2s" in check["output"] and "ss -ltnp" in check["hint"]


def test_no_teams_no_gateway_component(project):
    assert run_elfctl("db", "migrate", cwd=project).returncode == 0
    proc = run_elfctl("health", "--json", cwd=project)
    assert "gateway" not in json.loads(proc.stdout)["checks"]
