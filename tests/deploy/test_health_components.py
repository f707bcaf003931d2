"""`elfctl health` components docker, registry and team:<name>, passing and failing for real.

dockerd is shared with the other suites, so it is never stopped: an unreachable engine is a unix
socket where nothing listens, a hung one a socket that accepts and never answers (what a dead or
stuck engine looks like to the client). The registry is this test's own docker-registry process."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import pytest

from tests import realservices
from tests.conftest import run_elfctl, unavailable
from tests.deploy.conftest import make_team


def health(project, env, *components, timeout=None):
    args = ["health"] + [a for c in components for a in ("-c", c)]
    args += ["--timeout", str(timeout)] if timeout else []
    proc = run_elfctl(*args, "--json", cwd=project, env=env, timeout=60)
    human = run_elfctl(*args, cwd=project, env=env, timeout=60)
    assert human.returncode == proc.returncode, human.stderr
    return proc.returncode, json.loads(proc.stdout)["checks"], human.stdout


@pytest.fixture
def socket_dir():
    folder = Path(tempfile.mkdtemp(prefix="elfctl-h7-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def hung_socket(socket_dir):
    """A unix socket that accepts connections and never answers: a hung engine."""
    path = socket_dir / "hung.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.listen(16)
    conns, stop = [], threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(sock.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    yield path
    stop.set()
    for c in conns:
        c.close()
    sock.close()


def test_docker_engine_unreachable_or_hung_fails(project, socket_dir, hung_socket):
    assert run_elfctl("db", "migrate", cwd=project).returncode == 0
    # registry.url makes this a project that runs containers: the docker component is checked.
    env = {"ELFCTL_REGISTRY_URL": "127.0.0.1:1",
           "ELFCTL_DOCKER_HOST": f"unix://{socket_dir / 'nothing-listens.sock'}"}
    code, checks, table = health(project, env, "docker", "disk")
    docker = checks["docker"][0]
    assert code == 1 and docker["status"] == "fail", docker
    assert "nothing-listens.sock" in docker["output"] and docker["hint"]
    assert checks["disk"][0]["status"] == "pass"
    assert "docker" in table and "fail" in table and "Traceback" not in table

    env["ELFCTL_DOCKER_HOST"] = f"unix://{hung_socket}"
    code, checks, table = health(project, env, "docker", "disk", timeout=1)
    assert code == 1 and checks["docker"][0]["output"] == "no answer within 1s"
    assert checks["disk"][0]["status"] == "pass"  # the others still answered
    assert "no answer within 1s" in table


def test_stopped_registry_fails(project):
    folder = Path(tempfile.mkdtemp(prefix="elfctl-h7-registry-"))  # under /tmp: not pytest's private tmp
    try:
        address, _pid = realservices.start_registry(folder)
    except RuntimeError as exc:
        unavailable(f"cannot start docker-registry: {exc}")
    try:
        assert run_elfctl("db", "migrate", cwd=project).returncode == 0
        env = {"ELFCTL_REGISTRY_URL": address}
        code, checks, table = health(project, env, "registry")
        assert code == 0 and checks["registry"][0]["status"] == "pass", checks
        assert address in checks["registry"][0]["output"] and "elfctl health: pass" in table
        realservices.stop_registry(folder)
        code, checks, table = health(project, env, "registry")
        reg = checks["registry"][0]
        assert code == 1 and reg["status"] == "fail" and address in reg["output"], reg
        assert reg["hint"] and "elfctl health: fail" in table
    finally:
        realservices.stop_registry(folder)
        shutil.rmtree(folder, ignore_errors=True)


def test_unhealthy_team_container_fails(project, docker_env, team_name, engine):
    make_team(project, docker_env, team_name)
    proc = run_elfctl("deploy", team_name, cwd=project, env=docker_env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    component = f"team:{team_name}"
    code, checks, table = health(project, docker_env, component)
    entry = checks[component][0]
    assert code == 0 and entry["status"] == "pass" and "/health passing" in entry["output"], entry["output"]
    assert entry["observedValue"] == 1 and entry["observedUnit"] == "replicas"

    (app,) = engine.containers({"elfctl.prefix": docker_env["ELFCTL_DEPLOY_PREFIX"],
                                "elfctl.team": team_name, "elfctl.role": "app"})
    # Still running, but its health endpoint now answers `fail`.
    engine.exec(app["Id"], ["sh", "-c", "echo '{\"status\": \"fail\", \"output\": \"db down\"}' > /www/health"])
    code, checks, table = health(project, docker_env, component)
    entry = checks[component][0]
    assert code == 1 and entry["status"] == "fail", entry
    assert "/health failing" in entry["output"] and "db down" in entry["output"]
    assert f"elfctl logs {team_name}" in entry["hint"] and component in table

    engine.remove(app["Id"], grace_s=0)  # the replica is gone: the proxy still points at it
    code, checks, _ = health(project, docker_env, component)
    entry = checks[component][0]
    assert code == 1 and entry["status"] == "fail" and "not running" in entry["output"], entry


# httpd in the background; once /tmp/crash exists (it survives restarts: same container) every start
# exits 1 at once, so under `unless-stopped` Docker restarts it with a growing back-off.
CRASH_LOOP_DOCKERFILE = """\
FROM {base}
COPY www /www
EXPOSE 8080
CMD ["sh", "-c", "test -e /tmp/crash && exit 1; httpd -p 8080 -h /www; while [ ! -e /tmp/crash ]; do sleep 0.2; done; exit 1"]
"""


def test_restarting_replica_is_reported_restarting(project, docker_env, team_name, engine):
    import time

    folder = make_team(project, docker_env, team_name)
    (folder / "Dockerfile").write_text(CRASH_LOOP_DOCKERFILE.format(base=docker_env["ELFCTL_DEPLOY_BASE_IMAGE"]))
    proc = run_elfctl("deploy", team_name, cwd=project, env=docker_env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    (app,) = engine.containers({"elfctl.prefix": docker_env["ELFCTL_DEPLOY_PREFIX"],
                                "elfctl.team": team_name, "elfctl.role": "app"})
    name = app["Names"][0].lstrip("/")
    engine.exec(app["Id"], ["touch", "/tmp/crash"])
    # Back-off doubles from 0.1 s: after 4 restarts the container spends seconds restarting between
    # runs of a few milliseconds.
    deadline = time.monotonic() + 60
    while True:
        info = engine.inspect(app["Id"])
        if info["RestartCount"] >= 4 and info["State"]["Restarting"]:
            break
        assert time.monotonic() < deadline, info["State"]
        time.sleep(0.2)
    component = f"team:{team_name}"
    code, checks, table = health(project, docker_env, component)
    entry = checks[component][0]
    assert code == 1 and entry["status"] == "fail", entry
    assert f"{name} is restarting (restarted " in entry["output"], entry["output"]
    assert "last exit code 1" in entry["output"] and "not found" not in entry["output"]
    # The table comes from a second run: between two back-offs the replica runs for a few milliseconds,
    # so a run that lands there may see it running. Ask again until one lands in a back-off.
    for _ in range(5):
        if "restarting" in table:
            break
        table = run_elfctl("health", "-c", component, cwd=project, env=docker_env, timeout=60).stdout
    assert "restarting" in table
