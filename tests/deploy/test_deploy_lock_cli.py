"""Concurrent deploys of one team, and a lock left by a killed deploy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

from tests.conftest import run_elfctl
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
    store.close()
