"""Concurrent deploys of one team, a lock left by a killed deploy, and a deploy that lost its lease."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from tests import realservices
from tests.conftest import run_elfctl, unavailable
from tests.deploy.conftest import make_team, set_version


def _store(project):
    from elfctl import config
    from elfctl.bootstrap import open_store

    return open_store(config.load(cwd=project))


def test_second_deploy_fails_clearly_or_waits_for_the_lock(project, docker_env, team_name):
    from elfctl.services.deploy import lock as deploy_lock

    make_team(project, docker_env, team_name)
    store = _store(project)
    with deploy_lock.lease(store, team_name, "someone@else", ttl_s=10):
        proc = run_elfctl("deploy", team_name, cwd=project, env=docker_env)
        assert proc.returncode == 1
        assert "another deploy holds the lock" in proc.stderr and "someone@else" in proc.stderr
        assert "--lock-wait" in proc.stderr
    cm = deploy_lock.lease(store, team_name, "someone@else", ttl_s=10)
    cm.__enter__()
    threading.Timer(1.5, lambda: cm.__exit__(None, None, None)).start()
    proc = run_elfctl(
        "deploy", team_name, "--lock-wait", "30", "--json", cwd=project, env=docker_env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["state"] == "switched"
    store.close()


def test_two_deploys_at_once_run_one_after_the_other(project, docker_env, team_name):
    folder = make_team(project, docker_env, team_name)
    set_version(folder, "v-concurrent")
    cmd = [sys.executable, "-m", "elfctl", "deploy", team_name, "--lock-wait", "60", "--json"]
    env = {**os.environ, **docker_env}
    procs = [
        subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outs]
    states = sorted(json.loads(o[0])["state"] for o in outs)
    assert states == ["switched", "unchanged"]
    hist = json.loads(run_elfctl("deployments", team_name, "--json", cwd=project, env=docker_env).stdout)
    assert [r["revision"] for r in hist] == [1]


def test_lock_of_a_killed_deploy_is_recovered(project, docker_env, team_name):
    make_team(project, docker_env, team_name)
    _store(project).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time\n"
                "from elfctl import config\nfrom elfctl.bootstrap import open_store\n"
                "from elfctl.services.deploy import lock as deploy_lock\n"
                "store = open_store(config.load())\n"
                f"assert deploy_lock.try_acquire(store, {team_name!r}, 'doomed', 600) is None\n"
                "print('held', flush=True)\ntime.sleep(600)\n"
            ),
        ],
        cwd=project,
        env={**os.environ, **docker_env},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    os.kill(holder.pid, signal.SIGKILL)  # no cleanup: its lease row stays, expiring in 10 minutes
    holder.wait()
    from elfctl.services.deploy import lock as deploy_lock

    store = _store(project)
    assert deploy_lock.holder(store, team_name).owner == "doomed"
    # --lock-wait 0: a live holder would fail this deploy at once (exit 1); the dead one's lease,
    # valid for 10 more minutes, is taken over instead, and released when the deploy ends.
    proc = run_elfctl("deploy", team_name, "--lock-wait", "0", "--json", cwd=project, env=docker_env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["state"] == "switched"
    assert deploy_lock.holder(store, team_name) is None


# A version that answers its health check only after a few seconds: the deploy sits in its gate,
# holding the lease, long enough to cut it off from the store or pause it past the lease's ttl.
SLOW_START = 'FROM {base}\nCOPY www /www\nCMD ["sh", "-c", "sleep {delay}; exec httpd -f -v -p 8080 -h /www"]\n'


def _slow_version(folder, env, page: str, delay: float) -> None:
    (folder / "Dockerfile").write_text(SLOW_START.format(base=env["ELFCTL_DEPLOY_BASE_IMAGE"], delay=delay))
    set_version(folder, page)


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=3) as resp:
        return resp.read().decode().strip()


def _port(engine, env, team) -> int:
    info = engine.inspect(f"{env['ELFCTL_DEPLOY_PREFIX']}-{team}")
    return int(info["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])


def _wait_for_state(store, team: str, revision: int, state: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = store.query("SELECT state FROM deployments WHERE team = ? AND revision = ?", (team, revision))
        if rows and rows[0]["state"] == state:
            return
        time.sleep(0.05)
    raise AssertionError(f"revision {revision} of {team} never reached {state}")


def _start_deploy(project, env, team: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "elfctl", "deploy", team], cwd=project, env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_store_outage_past_the_lease_stops_the_deploy_before_the_switch(project, docker_env, team_name, engine):
    """Postgres stops while the new version is in its gate and stays down past lock_ttl_s: another
    deploy may hold the team by now, so this one must not switch, and says why."""
    from elfctl import config
    from elfctl.bootstrap import open_store

    try:
        dsn, data = realservices.start_postgres()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        unavailable(f"cannot start a throwaway PostgreSQL: {exc}")
    try:
        env = {**docker_env, "ELFCTL_STORE_URL": dsn, "ELFCTL_DEPLOY_LOCK_TTL_S": "2"}
        folder = make_team(project, env, team_name)
        fast = (folder / "Dockerfile").read_text()
        # v2 is deployed once, then v1: v2's image is in the registry, so deploying it again pushes
        # nothing and writes nothing between its gate and its switch (where only the fence can stop it).
        for dockerfile, page in ((None, "v2"), (fast, "v1")):
            if dockerfile:
                (folder / "Dockerfile").write_text(dockerfile)
                set_version(folder, page)
            else:
                _slow_version(folder, env, page, delay=6)
            proc = run_elfctl("deploy", team_name, cwd=project, env=env, timeout=180)
            assert proc.returncode == 0, proc.stderr
        port = _port(engine, env, team_name)
        assert _get(port) == "v1"
        _slow_version(folder, env, "v2", delay=6)
        store = open_store(config.load(cwd=project), dsn)
        deploy = _start_deploy(project, env, team_name)
        _wait_for_state(store, team_name, 3, "verifying")
        store.close()
        realservices.stop_postgres(data)  # the gate still waits for v2 (about 6 s), the lease is 2 s
        out, err = deploy.communicate(timeout=180)
        assert _get(port) == "v1", err  # not switched
        assert deploy.returncode == 1, err
        assert "lost the deploy lease" in err and "unreachable" in err and "longer than its 2s ttl" in err
        assert "stopped before the switch: the old version keeps serving" in err
        assert "Traceback" not in err
        assert engine.containers({"elfctl.team": team_name, "elfctl.revision": "3"}) == []
    finally:
        realservices.stop_postgres(data)
        shutil.rmtree(data.parent, ignore_errors=True)


def test_a_deploy_whose_lease_was_taken_over_neither_switches_nor_records(project, docker_env, team_name, engine):
    """The deploy is paused (SIGSTOP: a stalled VM, a long GC) past its lease; another process takes
    the expired lease. Resumed, the first deploy must not switch and must not write its history."""
    from elfctl.services.deploy import lock as deploy_lock

    env = {**docker_env, "ELFCTL_DEPLOY_LOCK_TTL_S": "2"}
    folder = make_team(project, env, team_name, page="v1")
    proc = run_elfctl("deploy", team_name, cwd=project, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    port = _port(engine, env, team_name)
    _slow_version(folder, env, "v2", delay=5)
    store = _store(project)
    deploy = _start_deploy(project, env, team_name)
    try:
        _wait_for_state(store, team_name, 2, "verifying")
        os.kill(deploy.pid, signal.SIGSTOP)
        time.sleep(3)  # past the 2 s lease: no heartbeat meanwhile
        assert deploy_lock.try_acquire(store, team_name, "taker", 600) is None
    finally:
        os.kill(deploy.pid, signal.SIGCONT)
    before = store.query("SELECT * FROM deployments WHERE team = ? AND revision = 2", (team_name,))
    out, err = deploy.communicate(timeout=180)
    assert _get(port) == "v1", err  # not switched
    assert deploy.returncode == 1, err
    assert "lost the deploy lease (another deploy took it over)" in err and "Traceback" not in err
    assert engine.containers({"elfctl.team": team_name, "elfctl.revision": "2"}) == []
    after = store.query("SELECT * FROM deployments WHERE team = ? AND revision = 2", (team_name,))
    assert after == before and after[0]["state"] == "verifying"  # not one write after the takeover
    assert deploy_lock.holder(store, team_name).owner == "taker"  # and the taker's lease stands
    # The next deploy under the lease finishes the job and settles the interrupted row.
    deploy_lock.release(store, team_name, "taker")
    proc = run_elfctl("deploy", team_name, "--json", cwd=project, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["revision"] == 3 and _get(port) == "v2"
    hist = {r["revision"]: r for r in json.loads(run_elfctl("deployments", team_name, "--json", cwd=project,
                                                            env=env).stdout)}
    assert {r: hist[r]["state"] for r in hist} == {1: "superseded", 2: "interrupted", 3: "switched"}
    assert hist[2]["error"].startswith("interrupted:") and hist[2]["finished_at"]
    store.close()
