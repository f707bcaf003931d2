"""The deploy history tells what serves after a deploy that stopped half-way (issue 14 items 2, 3).

Real dockerd, registry and SQLite store. A deploy is killed (SIGKILL: no cleanup at all) during its
build, during its health gate, and right after its switch (seen on the team's port); or the store's
write lock is held by another process across the switch. Then `deployments --json` and the next
deploy must say what the proxy really serves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from tests.conftest import run_elfctl
from tests.deploy.conftest import make_team, set_version


def _store(project):
    from elfctl import config
    from elfctl.bootstrap import open_store

    return open_store(config.load(cwd=project))


def _get(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as resp:
            return resp.read().decode().strip()
    except OSError:
        return None


def _port(engine, env, team) -> int:
    info = engine.inspect(f"{env['ELFCTL_DEPLOY_PREFIX']}-{team}")
    return int(info["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])


def _until(check, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


def _state(store, team: str, revision: int) -> str | None:
    rows = store.query("SELECT state FROM deployments WHERE team = ? AND revision = ?", (team, revision))
    return rows[0]["state"] if rows else None


def _start_deploy(project, env, team: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "elfctl", "deploy", team], cwd=project, env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _history(project, env, team: str) -> tuple[dict[int, dict], str]:
    proc = run_elfctl("deployments", team, "--json", cwd=project, env=env)
    assert proc.returncode == 0, proc.stderr
    return {r["revision"]: r for r in json.loads(proc.stdout)}, proc.stderr


def _deploy(project, env, team: str) -> dict:
    proc = run_elfctl("deploy", team, "--json", cwd=project, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _first(project, env, team):
    folder = make_team(project, env, team, page="v1")
    first = (folder / "Dockerfile").read_text(), (folder / "team.yaml").read_text()
    assert _deploy(project, env, team)["state"] == "switched"
    return folder, first


def _restore(folder, first) -> None:
    (folder / "Dockerfile").write_text(first[0])
    (folder / "team.yaml").write_text(first[1])
    set_version(folder, "v1")


def _slow(folder, env, page: str, build_s: float = 0, start_s: float = 0) -> None:
    run = f"RUN sleep {build_s}\n" if build_s else ""
    (folder / "Dockerfile").write_text(
        f"FROM {env['ELFCTL_DEPLOY_BASE_IMAGE']}\n{run}COPY www /www\n"
        f'CMD ["sh", "-c", "sleep {start_s}; exec httpd -f -v -p 8080 -h /www"]\n'
    )
    set_version(folder, page)


def _window(folder, seconds: float) -> None:
    yaml = folder / "team.yaml"
    yaml.write_text(yaml.read_text().replace("soak_s: 0.6", f"soak_s: {seconds:g}"))


def test_kill_during_the_build_is_recorded_interrupted(project, docker_env, team_name, engine):
    folder, first = _first(project, docker_env, team_name)
    port = _port(engine, docker_env, team_name)
    _slow(folder, docker_env, "v2", build_s=60)
    store = _store(project)
    deploy = _start_deploy(project, docker_env, team_name)
    _until(lambda: _state(store, team_name, 2) == "building", "revision 2 building")
    time.sleep(1.5)  # inside `docker build` (its RUN sleeps a minute)
    _kill(deploy)
    assert _state(store, team_name, 2) == "building"  # what a killed deploy leaves
    hist, err = _history(project, docker_env, team_name)
    assert hist[1]["state"] == "switched" and _get(port) == "v1"
    assert hist[2]["state"] == "interrupted" and hist[2]["finished_at"], hist[2]
    assert hist[2]["error"].startswith("interrupted: its deploy stopped in state building") and \
        "revision 1 serves" in hist[2]["error"]
    assert "revision 2: recorded interrupted" in err
    # The same content as revision 1 again: it serves, so nothing is rolled out.
    _restore(folder, first)
    again = _deploy(project, docker_env, team_name)
    assert again["state"] == "unchanged" and again["revision"] == 1
    store.close()


def test_kill_during_the_gate_is_recorded_interrupted(project, docker_env, team_name, engine):
    folder, first = _first(project, docker_env, team_name)
    port = _port(engine, docker_env, team_name)
    _slow(folder, docker_env, "v2", start_s=60)  # never healthy within the test: the gate waits
    store = _store(project)
    deploy = _start_deploy(project, docker_env, team_name)
    _until(lambda: _state(store, team_name, 2) == "verifying", "revision 2 verifying")
    # While its deploy lives (and holds the lease), its row is truly in progress: left alone.
    hist, err = _history(project, docker_env, team_name)
    assert hist[2]["state"] == "verifying" and "recorded" not in err
    _kill(deploy)
    assert _get(port) == "v1"
    # `infra up` settles it (then deploys every team: the same content as revision 1 is unchanged).
    _restore(folder, first)
    proc = run_elfctl("infra", "up", "--only", "teams", "--json", cwd=project, env=docker_env, timeout=240)
    steps = {s["name"]: s for s in json.loads(proc.stdout)["steps"]}
    assert f"{team_name} r1 unchanged" in steps["teams"]["details"], (steps, proc.stderr)
    assert "revision 2: recorded interrupted" in proc.stderr
    hist, _err = _history(project, docker_env, team_name)
    assert {r: hist[r]["state"] for r in hist} == {1: "switched", 2: "interrupted"}
    assert "stopped in state verifying" in hist[2]["error"] and "revision 1 serves" in hist[2]["error"]
    store.close()


def test_kill_right_after_the_switch_records_what_serves(project, docker_env, team_name, engine):
    folder, _first_files = _first(project, docker_env, team_name)
    port = _port(engine, docker_env, team_name)
    set_version(folder, "v2")
    _window(folder, 30)  # the deploy sits in its verification window, serving v2
    deploy = _start_deploy(project, docker_env, team_name)
    _until(lambda: _get(port) == "v2", "v2 serving", timeout_s=180)
    _kill(deploy)
    store = _store(project)
    assert (_state(store, team_name, 1), _state(store, team_name, 2)) == ("switched", "verifying")  # the lie
    hist, err = _history(project, docker_env, team_name)
    assert {r: hist[r]["state"] for r in hist} == {1: "superseded", 2: "switched"}, hist
    assert "its deploy stopped in state verifying" in hist[2]["details"]["reconciled"]
    assert "revision 2: recorded switched" in err
    # Asked again, nothing left to settle; the same content is unchanged, not a new revision.
    hist2, err2 = _history(project, docker_env, team_name)
    assert hist2 == hist and "recorded" not in err2
    again = _deploy(project, docker_env, team_name)
    assert again["state"] == "unchanged" and again["revision"] == 2, again
    assert _get(port) == "v2"
    store.close()


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")  # the store's write lock, as a long import or a sqlite3 shell holds it
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def _hold_lock_when_v2_serves(project, port: int, seconds: float) -> subprocess.Popen:
    _until(lambda: _get(port) == "v2", "v2 serving", timeout_s=180)
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(project / ".elf" / "elf.db"), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert locker.stdout.readline().strip() == "locked"
    return locker


def _locked_env(docker_env) -> dict:
    # A lease of 8 s bounds how long the record of the switch is retried; each try waits 1 s for the lock.
    return {**docker_env, "ELFCTL_DEPLOY_LOCK_TTL_S": "8", "ELFCTL_STORE_BUSY_TIMEOUT_MS": "1000"}


def test_store_locked_across_the_switch_is_waited_out_within_the_lease(project, docker_env, team_name, engine):
    env = _locked_env(docker_env)
    folder, _first_files = _first(project, env, team_name)
    port = _port(engine, env, team_name)
    set_version(folder, "v2")
    _window(folder, 2)
    deploy = _start_deploy(project, env, team_name)
    locker = _hold_lock_when_v2_serves(project, port, 5)  # past the 2 s window, within the 8 s lease
    out, err = deploy.communicate(timeout=180)
    locker.wait(timeout=30)
    assert deploy.returncode == 0, err
    assert "revision 2: switched" in out and "could not be written" not in out + err
    hist, _err = _history(project, env, team_name)
    assert {r: hist[r]["state"] for r in hist} == {1: "superseded", 2: "switched"}
    assert hist[2]["finished_at"] and "reconciled" not in hist[2]["details"]  # written by the deploy itself
    assert _get(port) == "v2"


def test_store_locked_past_the_lease_is_recorded_by_the_next_command(project, docker_env, team_name, engine):
    """Chosen: the switched version keeps serving (its old replicas are already retired, undoing it
    would be a second rollout), the deploy exits 0 saying its record is missing, and the next
    command that reads the history writes it."""
    env = _locked_env(docker_env)
    folder, _first_files = _first(project, env, team_name)
    port = _port(engine, env, team_name)
    set_version(folder, "v2")
    _window(folder, 2)
    deploy = _start_deploy(project, env, team_name)
    locker = _hold_lock_when_v2_serves(project, port, 20)  # longer than the 8 s lease
    out, err = deploy.communicate(timeout=180)
    assert locker.poll() is None  # the deploy gave up while the lock was still held
    assert deploy.returncode == 0, err
    assert "revision 2: switched" in out and "warning: revision 2 serves, but its record could not be written" \
        in out, out
    assert "lost the deploy lease" in out and "Traceback" not in err
    assert _get(port) == "v2"
    store = _store(project)
    assert _state(store, team_name, 2) == "verifying"  # not written: the lock held
    store.close()
    locker.wait(timeout=60)
    hist, err = _history(project, env, team_name)
    assert {r: hist[r]["state"] for r in hist} == {1: "superseded", 2: "switched"}, hist
    assert "revision 2: recorded switched" in err
    again = _deploy(project, env, team_name)
    assert again["state"] == "unchanged" and again["revision"] == 2
