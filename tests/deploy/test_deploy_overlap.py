"""The fast path of a changed deploy keeps its guarantees: the push runs beside starting and
verifying the new version, yet a failed push refuses the switch; the replaced replica is retired
after the deploy returns, and the record says so; the proxy's state port agrees with `docker exec`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests import realservices
from tests.conftest import run_elfctl, unavailable
from tests.deploy.conftest import make_team, set_version
from tests.deploy.test_deploy_flow import Prober, _deploy, _get, _history, _port


@pytest.fixture
def readonly_registry():
    """A second docker-registry in read-only maintenance mode: it answers manifest lookups (404 for
    anything new) but refuses every push."""
    if not Path(realservices.REGISTRY_BIN).exists():
        unavailable(f"{realservices.REGISTRY_BIN} not found (apt-get install docker-registry)")
    folder = Path(tempfile.mkdtemp(prefix="elfctl-ro-registry-"))
    port = realservices.free_port()
    (folder / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"  maintenance:\n    readonly:\n      enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    with open(folder / "log", "ab") as log:
        proc = subprocess.Popen([realservices.REGISTRY_BIN, "serve", str(folder / "config.yml")],
                                stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def test_failed_push_refuses_the_switch(project, docker_env, team_name, engine, readonly_registry):
    env = {**docker_env, "ELFCTL_DEPLOY_STOP_GRACE_S": "1"}  # busybox httpd ignores SIGTERM
    folder = make_team(project, env, team_name, page="v1")
    proc, first = _deploy(project, env, team_name)
    assert proc.returncode == 0, proc.stderr
    port = _port(engine, env, team_name)

    # The new version builds, starts and would pass its gate, but its push is refused: nothing
    # switches, the new replica is removed, the old one answers every request meanwhile.
    set_version(folder, "v2")
    with Prober(port) as prober:
        proc, _out = _deploy(project, {**env, "ELFCTL_REGISTRY_URL": readonly_registry}, team_name)
        time.sleep(0.3)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "push" in proc.stderr, proc.stderr
    assert prober.failed == [] and prober.ok > 10 and prober.bodies == {"v1"}
    assert _get(port) == "v1"
    assert not engine.containers({"elfctl.team": team_name, "elfctl.revision": "2"})
    hist = _history(project, env, team_name)
    assert hist[1]["state"] == "switched"
    assert hist[2]["state"] == "failed" and "push" in hist[2]["error"] and hist[2]["finished_at"]
    assert hist[2]["details"]["pushed"] is False

    # The same change through the working registry deploys; the replica it replaced is drained and
    # removed after the command returned, and the record names it.
    proc, second = _deploy(project, env, team_name)
    assert proc.returncode == 0, proc.stderr
    assert second["state"] == "switched" and second["pushed"] and second["digest"].startswith("sha256:")
    assert _get(port) == "v2"
    old = f"{env['ELFCTL_DEPLOY_PREFIX']}-{team_name}-r1-0"
    hist = _history(project, env, team_name)
    assert hist[3]["details"]["retired"] == [old] and hist[3]["digest"] == second["digest"]
    deadline = time.monotonic() + 30
    while engine.inspect(old) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert engine.inspect(old) is None
    assert [c["Names"][0].lstrip("/") for c in engine.containers(
        {"elfctl.team": team_name, "elfctl.role": "app"})] == [f"{env['ELFCTL_DEPLOY_PREFIX']}-{team_name}-r3-0"]


def test_state_port_agrees_with_exec(project, docker_env, team_name, engine):
    from elfctl.adapters.docker_target import DockerTarget

    env = dict(docker_env)
    make_team(project, env, team_name, replicas=2)
    proc, res = _deploy(project, env, team_name)
    assert proc.returncode == 0, proc.stderr
    target = DockerTarget(engine, network=env["ELFCTL_DEPLOY_NETWORK"], prefix=env["ELFCTL_DEPLOY_PREFIX"])
    proxy = engine.inspect(target.proxy_name(team_name))
    assert target.proxy.ask_state_port(proxy) is not None  # answered over the port, not through exec
    by_port = target.proxy.live(team_name, with_ports=True)
    target.proxy.state_port_ok = False
    by_exec = target.proxy.live(team_name, with_ports=True)
    assert by_port == by_exec and len(by_port[0]) == 2 and by_port[1:] == (res["image"], res["revision"])
    status = json.loads(run_elfctl("infra", "status", "--json", cwd=project, env=env).stdout)
    row = [c for c in status["components"] if c["component"] == f"team:{team_name}"][0]
    assert row["state"] == "up" and "2/2 ready" in row["details"]


def test_a_switch_that_fails_refuses_the_version(project, docker_env, team_name, engine):
    env = dict(docker_env)
    folder = make_team(project, env, team_name, page="v1")
    proc, _first = _deploy(project, env, team_name)
    assert proc.returncode == 0, proc.stderr
    proxy = f"{env['ELFCTL_DEPLOY_PREFIX']}-{team_name}"
    # A folder where the switch writes its new list: the switch fails, the old list stays.
    code, _out = engine.exec(proxy, ["mkdir", "/run/elf/t.new"])
    assert code == 0
    set_version(folder, "v2")
    port = _port(engine, env, team_name)
    with Prober(port) as prober:
        proc, bad = _deploy(project, env, team_name)
        time.sleep(0.3)
    assert proc.returncode == 1 and bad["state"] == "rolled_back" and "switch" in bad["reason"]
    assert prober.failed == [] and prober.ok > 10 and prober.bodies == {"v1"}
    assert not engine.containers({"elfctl.team": team_name, "elfctl.revision": "2"})
    assert engine.inspect(f"{proxy}-r1-0")["State"]["Running"]  # never retired
    assert _history(project, env, team_name)[2]["state"] == "rolled_back"


def test_stopping_a_team_while_its_old_replica_retires(project, docker_env, team_name, engine):
    """`infra down` (DockerTarget.stop) right after a deploy meets the retirement helper on the
    replaced replica; both end with every container of the team gone, and no error."""
    from elfctl.adapters.docker_target import DockerTarget

    env = dict(docker_env)  # the default 10 s grace: the helper is still at work below
    folder = make_team(project, env, team_name, page="v1")
    assert _deploy(project, env, team_name)[0].returncode == 0
    set_version(folder, "v2")
    proc, second = _deploy(project, env, team_name)
    assert proc.returncode == 0 and second["state"] == "switched", proc.stderr
    old = f"{env['ELFCTL_DEPLOY_PREFIX']}-{team_name}-r1-0"
    assert engine.inspect(old) is not None  # still in its grace
    target = DockerTarget(engine, network=env["ELFCTL_DEPLOY_NETWORK"], prefix=env["ELFCTL_DEPLOY_PREFIX"])
    assert target.stop(team_name)
    assert not engine.containers({"elfctl.team": team_name})
