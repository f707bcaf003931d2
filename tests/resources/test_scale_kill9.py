"""kill -9 during scale_down (services/deploy/scale.py) on the real dockerd, at each of its stages:

- intent-recorded: the count to restore is written, the target not yet touched;
- proxy-switched: inside the Docker target, the proxy serves one replica fewer, the other not yet retired;
- target-scaled: the target has scaled, the outcome not yet in the trail.

The moment is picked the way tests/deploy/test_history_truth.py picks its own (observed from outside,
then SIGKILL, no cleanup): the process prints when it reaches the stage and holds there (a wrapper
around the real target, test code only). Then what a user sees: `elfctl health` shows a replica count
the proxy really serves (n/n ready), a re-run of `elfctl resources --apply` completes the scale down
(one trail row, whatever the stage), no replica is left running unserved, and the restore brings
the team back to 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import run_elfctl
from tests.contract.test_deploy_target import _wait_for
from tests.deploy.conftest import docker_env, engine, make_team, registry_address, team_name  # noqa: F401

DRIVER = """
import sys, time
from elfctl.app import App
from elfctl.output import Output
from elfctl.services.deploy import scale

team, stage = sys.argv[1], sys.argv[2]
app = App(Output())
target = app.target

def hold(at):
    if at == stage:
        print("at " + at, flush=True)
        time.sleep(600)

real_scale, real_write = target.scale, target.proxy.write_targets

def write_targets(*args, **kwargs):
    out = real_write(*args, **kwargs)
    hold("proxy-switched")
    return out

def scale_(name, replicas):
    hold("intent-recorded")
    out = real_scale(name, replicas)
    hold("target-scaled")
    return out

target.proxy.write_targets, target.scale = write_targets, scale_
print(scale.down(app.store, target, team, "memory", "memory container critical (test)").result, flush=True)
"""

HOT = {"ELFCTL_RESOURCES_MEMORY_WARNING": "0.0001", "ELFCTL_RESOURCES_MEMORY_CRITICAL": "0.0002"}  # every container


@pytest.fixture
def team(project, docker_env, team_name, engine):  # noqa: F811
    env = {**docker_env, "ELFCTL_RESOURCES_TIMEOUT_S": "20", "ELFCTL_DEPLOY_STOP_GRACE_S": "1",
           "ELFCTL_DOCKER_TIMEOUT_S": "60",  # about kills, not timeouts: a loaded engine may take 10 s to start one

           "ELFCTL_RESOURCES_CPU_WARNING": "1000", "ELFCTL_RESOURCES_CPU_CRITICAL": "1000",  # host cpu: not ours
           "ELFCTL_RESOURCES_DOCKER_WARNING": "1000", "ELFCTL_RESOURCES_DOCKER_CRITICAL": "1000"}  # nor its disk
    make_team(project, env, team_name, replicas=2)
    proc = run_elfctl("deploy", team_name, cwd=project, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    yield team_name, env
    # The engine and the prefix are the session's: a team left running would read critical in the next test.
    run_elfctl("team", "rm", team_name, "--yes", cwd=project, env=env)
    run_elfctl("infra", "down", cwd=project, env=env)


def _health(project, env, team) -> tuple[int, str]:
    proc = run_elfctl("health", "--json", cwd=project, env=env)
    check = json.loads(proc.stdout)["checks"][f"team:{team}"][0]
    return check["observedValue"], check["output"]


def _containers(engine, env, team) -> list[str]:  # noqa: F811
    return sorted(c["Names"][0].lstrip("/") for c in engine.containers(
        {"elfctl.prefix": env["ELFCTL_DEPLOY_PREFIX"], "elfctl.team": team, "elfctl.role": "app"}))


def _scale_rows(project) -> list[tuple[str, str]]:
    import sqlite3

    with sqlite3.connect(project / ".elf" / "elf.db") as db:
        return [tuple(r) for r in db.execute("SELECT strategy, result FROM platform_actions "
                                             "WHERE strategy IN ('scale_down', 'restore') ORDER BY ts")]


def _apply(project, env) -> list[dict]:
    proc = run_elfctl("resources", "--apply", "--json", cwd=project, env=env)
    doc = json.loads(proc.stdout)
    assert proc.returncode in (0, 1) and "policy" in doc, (proc.stdout[-2000:], proc.stderr)
    return [s for s in doc["policy"] if s["strategy"] in ("scale_down", "restore")]


def _kill_at(project, env, team, stage, driver: str = DRIVER) -> None:
    proc = subprocess.Popen([sys.executable, "-c", driver, team, stage], cwd=project, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line == f"at {stage}", (line, proc.stderr.read() if proc.poll() is not None else "")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("stage, serving_after_kill", [
    ("intent-recorded", 2), ("proxy-switched", 1), ("target-scaled", 1)])
def test_scale_down_killed_at_each_stage_is_completed_by_the_next_run(project, team, engine, stage,  # noqa: F811
                                                                      serving_after_kill):
    name, env = team
    assert _health(project, env, name)[0] == 2 and len(_containers(engine, env, name)) == 2

    _kill_at(project, env, name, stage)
    count, output = _health(project, env, name)
    assert count == serving_after_kill and output.startswith(f"{count}/{count} ready"), output
    assert _scale_rows(project) == []  # killed before its outcome was recorded

    steps = _apply(project, {**env, **HOT})  # the re-run: the team's containers read critical
    assert [(s["strategy"], s["result"]) for s in steps] == [("scale_down", "ok: 2 -> 1 replicas")], steps
    count, output = _health(project, env, name)
    assert count == 1 and output.startswith("1/1 ready"), output
    assert _scale_rows(project) == [("scale_down", "ok: 2 -> 1 replicas")]
    assert _wait_for(lambda: len(_containers(engine, env, name)) == 1, timeout=60), _containers(engine, env, name)

    steps = _apply(project, {**env, **HOT})  # still critical, at the minimum: nothing more
    assert not [s for s in steps if s["result"].startswith("ok")], steps
    steps = _apply(project, env)  # recovered: back to the count deployed
    assert [(s["strategy"], s["result"]) for s in steps] == [("restore", "ok: 1 -> 2 replicas")], steps
    count, output = _health(project, env, name)
    assert count == 2 and output.startswith("2/2 ready"), output
    assert _scale_rows(project) == [("scale_down", "ok: 2 -> 1 replicas"), ("restore", "ok: 1 -> 2 replicas")]
    assert len(_containers(engine, env, name)) == 2


def test_a_restore_first_records_the_interrupted_scale_down(project, team, engine):  # noqa: F811
    """Killed after the target scaled; the resource recovered before any re-run: the restore records the
    scale down the killed process could not, then its own."""
    name, env = team
    _kill_at(project, env, name, "target-scaled")
    steps = _apply(project, env)
    assert [(s["strategy"], s["result"]) for s in steps] == [("restore", "ok: 1 -> 2 replicas")], steps
    assert _scale_rows(project) == [("scale_down", "ok: 2 -> 1 replicas"), ("restore", "ok: 1 -> 2 replicas")]
    count, output = _health(project, env, name)
    assert count == 2 and output.startswith("2/2 ready"), output
    assert _wait_for(lambda: len(_containers(engine, env, name)) == 2, timeout=60), _containers(engine, env, name)
