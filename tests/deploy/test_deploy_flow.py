"""Deploys on the real Docker engine and registry, driven through the CLI as a user would."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest

from tests.conftest import run_elfctl
from tests.deploy.conftest import make_team, set_version


def _get(port: int, path: str = "/index.html") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as resp:
        return resp.read().decode().strip()


def _port(engine, env, team) -> int:
    info = engine.inspect(f"{env['ELFCTL_DEPLOY_PREFIX']}-{team}")
    return int(info["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])


def _deploy(project, env, *args):
    proc = run_elfctl("deploy", *args, "--json", cwd=project, env=env, timeout=180)
    return proc, (json.loads(proc.stdout) if proc.stdout.strip() else None)


def _history(project, env, team):
    proc = run_elfctl("deployments", team, "--json", cwd=project, env=env)
    assert proc.returncode == 0, proc.stderr
    return {r["revision"]: r for r in json.loads(proc.stdout)}


class Prober:
    """Hits the team's stable port in a loop; every answer that is not 200 is a failed request. Keeps
    when each failed request was sent (`failed_at`) and when the first one was answered (`first_ok`)."""

    def __init__(self, port: int):
        self.port, self.ok, self.failed, self.bodies = port, 0, [], set()
        self.failed_at: list[float] = []
        self.first_ok: float | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                self.bodies.add(_get(self.port))
                self.ok += 1
                self.first_ok = self.first_ok or sent
            except Exception as exc:  # noqa: BLE001
                self.failed.append(repr(exc))
                self.failed_at.append(sent)
            time.sleep(0.01)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def test_deploy_lifecycle(project, store_url, docker_env, team_name, engine):
    # Keep one revision's image on this machine: the others are pruned (once no container uses them).
    # A short stop grace: busybox httpd ignores SIGTERM, and revision 1's image is removed below
    # once its replaced container is gone.
    env = {**docker_env, "ELFCTL_STORE_URL": store_url, "ELFCTL_DEPLOY_KEEP_IMAGES": "1",
           "ELFCTL_DEPLOY_STOP_GRACE_S": "1"}
    assert run_elfctl("db", "migrate", cwd=project, env=env).returncode == 0
    folder = make_team(project, env, team_name, page="v1")

    proc, first = _deploy(project, env, team_name)
    assert proc.returncode == 0, proc.stderr
    assert first["state"] == "switched" and first["built"] and first["pushed"] and first["revision"] == 1
    assert first["digest"].startswith("sha256:")
    port = _port(engine, env, team_name)
    assert _get(port) == "v1"

    # Unchanged: nothing built, pushed or recorded.
    proc, again = _deploy(project, env, team_name)
    assert (
        proc.returncode == 0 and again["state"] == "unchanged" and not again["built"] and not again["pushed"]
    )
    assert list(_history(project, env, team_name)) == [1]

    # A change deploys a new revision behind the same port.
    set_version(folder, "v2")
    proc, second = _deploy(project, env, team_name)
    assert proc.returncode == 0, proc.stderr
    assert second["state"] == "switched" and second["revision"] == 2 and second["image"] != first["image"]
    assert _get(port) == "v2" and _port(engine, env, team_name) == port

    # A version failing its health check is refused; the old one answers every request meanwhile.
    set_version(folder, "v3", '{"status": "fail", "output": "db down"}')
    with Prober(port) as prober:
        proc, bad = _deploy(project, env, team_name)
        time.sleep(0.3)
    assert proc.returncode == 1
    assert bad["state"] == "rolled_back" and "health" in bad["reason"] and "db down" in bad["reason"]
    assert bad["logs"]  # the new version's last log lines
    # the result and the error in one JSON object, as every failure under --json
    assert bad["error"]["code"] == "failed" and "previous version keeps serving" in bad["error"]["message"]
    assert prober.failed == [] and prober.ok > 10 and prober.bodies == {"v2"}
    assert _get(port) == "v2"
    assert not [c for c in engine.containers({"elfctl.team": team_name, "elfctl.revision": "3"})]

    hist = _history(project, env, team_name)
    assert {r: hist[r]["state"] for r in hist} == {1: "superseded", 2: "switched", 3: "rolled_back"}
    assert "db down" in hist[3]["error"] and hist[3]["finished_at"]
    assert hist[2]["digest"] == second["digest"] and hist[2]["who"]

    # Rollback to an earlier revision goes through the same gate and serves v1 again, pulling its
    # image back from the registry when it is no longer on this machine.
    deadline = time.monotonic() + 30  # revision 1's replica is retired in the background
    while engine.containers({"elfctl.team": team_name, "elfctl.revision": "1"}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert engine.remove_image(first["image"])
    proc = run_elfctl("rollback", team_name, "--to", "1", "--json", cwd=project, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    back = json.loads(proc.stdout)
    assert back["state"] == "switched" and back["image"] == first["image"] and back["revision"] == 4
    assert _get(port) == "v1" and engine.image_id(first["image"])
    assert bad["image"] in back["pruned"] and engine.image_id(bad["image"]) is None
    hist = _history(project, env, team_name)
    assert hist[4]["details"]["rollback_of"] == 1 and hist[2]["state"] == "superseded"

    # Health reports the team; logs show the serving version's log.
    health = json.loads(run_elfctl("health", "--json", cwd=project, env=env).stdout)
    assert health["checks"][f"team:{team_name}"][0]["status"] == "pass"
    logs = run_elfctl("logs", team_name, "--tail", "5", cwd=project, env=env)
    assert logs.returncode == 0 and "response:200" in logs.stdout


def test_replicas_switch_together_and_warn_is_recorded(project, docker_env, team_name, engine):
    env = dict(docker_env)
    make_team(project, env, team_name, health_doc='{"status": "warn", "output": "cache cold"}', replicas=2)
    proc, res = _deploy(project, env, team_name)
    assert proc.returncode == 0, proc.stderr
    assert res["state"] == "switched" and any("cache cold" in w for w in res["warnings"])
    running = engine.containers({"elfctl.team": team_name, "elfctl.role": "app"}, all_=False)
    assert len(running) == 2
    status = json.loads(run_elfctl("infra", "status", "--json", cwd=project, env=env).stdout)
    team_row = [c for c in status["components"] if c["component"] == f"team:{team_name}"][0]
    assert team_row["state"] == "up" and "2/2 ready" in team_row["details"]


def test_first_deploy_that_never_gets_healthy_fails_cleanly(project, docker_env, team_name, engine):
    env = dict(docker_env)
    folder = make_team(project, env, team_name)
    (folder / "Dockerfile").write_text(
        f'FROM {env["ELFCTL_DEPLOY_BASE_IMAGE"]}\nCMD ["sh", "-c", "echo boom-at-start; exit 3"]\n'
    )
    proc, res = _deploy(project, env, team_name)
    assert proc.returncode == 1
    assert (
        res["state"] == "failed" and "exited with code 3" in res["reason"] and "boom-at-start" in res["logs"]
    )
    assert not engine.containers({"elfctl.team": team_name, "elfctl.role": "app"})


def test_dry_run_changes_nothing(project, docker_env, team_name):
    make_team(project, docker_env, team_name)
    proc, res = _deploy(project, docker_env, team_name, "--dry-run")
    assert proc.returncode == 0 and res["state"] == "planned"
    assert _history(project, docker_env, team_name) == {}


@pytest.mark.parametrize(
    "override, needle",
    [
        ({"ELFCTL_DOCKER_HOST": "unix:///nonexistent/docker.sock"}, "Docker engine not reachable"),
        ({"ELFCTL_REGISTRY_URL": "127.0.0.1:1"}, "registry http://127.0.0.1:1 not reachable"),
    ],
)
def test_unreachable_docker_or_registry_exit_3(project, docker_env, team_name, override, needle):
    make_team(project, docker_env, team_name)
    proc = run_elfctl("deploy", team_name, cwd=project, env={**docker_env, **override})
    assert proc.returncode == 3, proc.stderr
    assert needle in proc.stderr and "hint:" in proc.stderr and "Traceback" not in proc.stderr
    if "DOCKER" in str(override):
        assert "apt-get install docker.io" in proc.stderr
    assert _history(project, docker_env, team_name) == {}
