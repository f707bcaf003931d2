"""Issue 14, item 4: the published port is where team.yaml's `host_port` says, or the deploy says why
not. A taken port is a clear error naming the port and what holds it, and leaves no half-made proxy;
a changed `host_port` moves a running team to the new port without failing requests there. Real
dockerd and registry; ports are taken by a plain socket listener in this process."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

from tests.conftest import run_elfctl
from tests.deploy.conftest import make_team
from tests.deploy.test_deploy_flow import Prober, _deploy, _get, _history, _port
from tests.deploy.test_verification_window import TimedProber
from tests.realservices import free_port


class FirstAnswer(TimedProber):
    """A port that does not exist yet refuses, which is no failure of the move; one that answered
    (`first_ok`) must go on answering."""

    def failed_since_first_answer(self) -> int:
        return len([t for t in self.failed_at if self.first_ok and t > self.first_ok])


def _listener() -> socket.socket:
    """A port on 127.0.0.1 held by this process, as any program could hold it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def _set_host_port(folder: Path, port: int) -> None:
    path = folder / "team.yaml"
    text = re.sub(r"(?m)^#? ?host_port:.*\n", "", path.read_text())
    path.write_text(text + f"host_port: {port}\n")


def _team_containers(engine, team: str) -> list[str]:
    """Every container of the team, whatever its state (Created included)."""
    return sorted(f"{c['Names'][0].lstrip('/')} {c['State']}" for c in engine.containers({"elfctl.team": team}))


def _refused(port: int, seconds: float = 10.0) -> bool:
    """True once nothing answers on `port` (within `seconds`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            _get(port)
        except OSError:
            return True
        time.sleep(0.1)
    return False


def _taken_error(proc, out: dict, port: int, folder: Path) -> None:
    assert proc.returncode == 1, proc.stderr
    err = out["error"]
    assert err["code"] == "conflict", err
    assert f"host port {port}" in err["message"] and "host_port" in err["message"], err
    assert str(folder / "team.yaml") in err["message"] or "team.yaml" in err["message"], err
    assert f"pid {os.getpid()}" in err["message"], err  # what holds it, when this machine can tell
    assert "Traceback" not in proc.stderr


def test_first_deploy_on_a_taken_port_leaves_nothing_and_a_changed_port_works(project, docker_env, team_name,
                                                                                engine):
    folder = make_team(project, docker_env, team_name, page="v1")
    held = _listener()
    taken = held.getsockname()[1]
    try:
        _set_host_port(folder, taken)
        proc, out = _deploy(project, docker_env, team_name)
        _taken_error(proc, out, taken, folder)
        assert _team_containers(engine, team_name) == []  # no proxy left `Created`, no replica
        # Again: still the same clear error, not a leftover's (issue 14: "every later deploy fails").
        proc, out = _deploy(project, docker_env, team_name)
        _taken_error(proc, out, taken, folder)
        assert _team_containers(engine, team_name) == []

        # team.yaml names another port: the deploy serves there (the first one is still held).
        other = free_port()
        _set_host_port(folder, other)
        proc, out = _deploy(project, docker_env, team_name)
        assert proc.returncode == 0, proc.stderr
        assert out["state"] == "switched"
        assert _port(engine, docker_env, team_name) == other and _get(other) == "v1"
    finally:
        held.close()
    hist = _history(project, docker_env, team_name)
    assert [hist[r]["state"] for r in sorted(hist)] == ["failed", "failed", "switched"]
    assert "host port" in hist[1]["error"]


def test_changing_host_port_moves_a_running_team_without_failing_requests(project, docker_env, team_name,
                                                                           engine):
    folder = make_team(project, docker_env, team_name, page="v1")
    first = free_port()
    _set_host_port(folder, first)
    proc, _ = _deploy(project, docker_env, team_name)
    assert proc.returncode == 0, proc.stderr
    assert _get(first) == "v1"

    moved = free_port()
    _set_host_port(folder, moved)
    with Prober(first) as on_old, FirstAnswer(moved) as on_new:  # users on both ports during the deploy
        proc, out = _deploy(project, docker_env, team_name)
    assert proc.returncode == 0, proc.stderr
    assert out["state"] == "switched" and out["revision"] == 2
    with Prober(moved) as after:
        time.sleep(2.0)
    assert after.failed == [] and after.ok > 20 and after.bodies == {"v1"}, after.failed[:3]
    assert on_old.ok > 0  # it served on the old port until the move
    assert on_new.first_ok and on_new.failed_since_first_answer() == 0, on_new.failed[-3:]
    assert _refused(first)  # the old port stops
    assert _port(engine, docker_env, team_name) == moved
    status = json.loads(run_elfctl("infra", "status", "--json", cwd=project, env=docker_env).stdout)
    assert f"{moved}" in json.dumps(status)
    # One proxy and one replica: the old proxy is gone, no helper proxy is left behind.
    names = _team_containers(engine, team_name)
    assert [n for n in names if "-r" not in n] == [f"{docker_env['ELFCTL_DEPLOY_PREFIX']}-{team_name} running"], names

    # The same team.yaml again: nothing to do.
    proc, out = _deploy(project, docker_env, team_name)
    assert proc.returncode == 0 and out["state"] == "unchanged", proc.stderr


def test_moving_to_a_taken_port_is_refused_and_the_old_port_keeps_serving(project, docker_env, team_name, engine):
    folder = make_team(project, docker_env, team_name, page="v1")
    first = free_port()
    _set_host_port(folder, first)
    proc, _ = _deploy(project, docker_env, team_name)
    assert proc.returncode == 0, proc.stderr
    before = _team_containers(engine, team_name)

    held = _listener()
    taken = held.getsockname()[1]
    try:
        _set_host_port(folder, taken)
        with Prober(first) as users:
            proc, out = _deploy(project, docker_env, team_name)
            time.sleep(0.5)
        _taken_error(proc, out, taken, folder)
    finally:
        held.close()
    assert users.failed == [] and users.ok > 10 and users.bodies == {"v1"}, users.failed[:3]
    assert _port(engine, docker_env, team_name) == first
    assert _team_containers(engine, team_name) == before  # nothing added, nothing removed


def test_a_deploy_clears_what_an_older_failure_or_a_killed_move_left(project, docker_env, team_name, engine):
    """A proxy left `Created` on a taken port (what earlier versions left), and a move killed between
    its steps (the new proxy started, the old one renamed away): the next deploy serves on team.yaml's
    port and leaves one proxy."""
    prefix = docker_env["ELFCTL_DEPLOY_PREFIX"]
    proxy = f"{prefix}-{team_name}"
    labels = {"elfctl.managed": "true", "elfctl.prefix": prefix, "elfctl.team": team_name, "elfctl.role": "proxy"}
    folder = make_team(project, docker_env, team_name, page="v1")
    held = _listener()
    try:
        engine.api.create_container(  # as `docker run` leaves it when the port is taken
            docker_env["ELFCTL_DEPLOY_BASE_IMAGE"], command=["sleep", "600"], name=proxy, labels=labels,
            ports=[8080], host_config=engine.api.create_host_config(
                port_bindings={8080: ("127.0.0.1", held.getsockname()[1])}, network_mode=prefix))
        first = free_port()
        _set_host_port(folder, first)
        proc, _ = _deploy(project, docker_env, team_name)
        assert proc.returncode == 0, proc.stderr
        assert _get(first) == "v1"
    finally:
        held.close()

    # Killed mid-move: the serving proxy renamed to .old, a new one (.next) running beside it.
    engine.rename(proxy, f"{proxy}.old")
    engine.run(f"{proxy}.next", docker_env["ELFCTL_DEPLOY_BASE_IMAGE"], network=prefix, labels=labels, env={},
               command=["sleep", "600"], ports={8080: ("127.0.0.1", None)})
    moved = free_port()
    _set_host_port(folder, moved)
    proc, out = _deploy(project, docker_env, team_name)
    assert proc.returncode == 0 and out["state"] == "switched", proc.stderr
    assert _get(moved) == "v1" and _refused(first)
    names = _team_containers(engine, team_name)
    assert [n for n in names if "-r" not in n] == [f"{proxy} running"], names
