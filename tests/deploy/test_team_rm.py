"""`elfctl team rm` on the real dockerd and registry, and what `health` / `infra status` say about a
team the store knows whose folder is gone (issue 14, item 6)."""

from __future__ import annotations

import json
import shlex
import shutil
import sys

from tests.conftest import run_elfctl
from tests.deploy.conftest import make_team


def _app_containers(engine, env, team):
    return engine.containers({"elfctl.prefix": env["ELFCTL_DEPLOY_PREFIX"], "elfctl.team": team})


def _deploy(project, env, team) -> dict:
    proc = run_elfctl("deploy", team, "--json", cwd=project, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _history(project, env, team) -> list[dict]:
    proc = run_elfctl("deployments", team, "--json", cwd=project, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _health(project, env) -> tuple[int, dict]:
    proc = run_elfctl("health", "--json", cwd=project, env=env, timeout=90)
    return proc.returncode, json.loads(proc.stdout)["checks"]


def test_team_gone_from_disk_and_engine_is_orphaned_until_team_rm(project, docker_env, team_name, engine):
    folder = make_team(project, docker_env, team_name)
    _deploy(project, docker_env, team_name)
    component = f"team:{team_name}"
    # What a user did before `team rm` existed: delete the folder and the containers.
    shutil.rmtree(folder)
    for c in _app_containers(engine, docker_env, team_name):
        engine.remove(c["Id"], grace_s=0)

    code, checks = _health(project, docker_env)
    entry = checks[component][0]
    assert entry["status"] == "warn", entry  # reported, not a failure forever
    assert f"no folder {folder}" in entry["output"] and "nothing running" in entry["output"], entry
    assert f"`elfctl team rm {team_name}`" in entry["hint"]
    assert code == 0 or any(c[0]["status"] == "fail" for k, c in checks.items() if k != component), checks

    proc = run_elfctl("infra", "status", "--json", cwd=project, env=docker_env, timeout=60)
    (row,) = [c for c in json.loads(proc.stdout)["components"] if c["component"] == component]
    assert row["state"] == "orphaned" and f"elfctl team rm {team_name}" in row["details"], row
    assert proc.returncode == 0, proc.stdout

    proc = run_elfctl("team", "rm", team_name, "--yes", "--json", cwd=project, env=docker_env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["stopped"] is False and out["removed_revisions"] == [1] and out["folder"] is None, out

    code, checks = _health(project, docker_env)
    assert component not in checks, checks[component]
    proc = run_elfctl("infra", "status", "--json", cwd=project, env=docker_env, timeout=60)
    assert component not in {c["component"] for c in json.loads(proc.stdout)["components"]}
    (rev,) = _history(project, docker_env, team_name)
    assert rev["state"] == "removed" and rev["details"]["removed"]["command"] == f"elfctl team rm {team_name}"


def test_team_rm_stops_keeps_history_and_images_then_redeploys(project, docker_env, team_name, engine):
    folder = make_team(project, docker_env, team_name)
    deployed = _deploy(project, docker_env, team_name)
    assert len(_app_containers(engine, docker_env, team_name)) == 2  # one replica and the proxy

    # No terminal and no --yes: refused, nothing changed.
    proc = run_elfctl("team", "rm", team_name, cwd=project, env=docker_env, input="y\n")
    assert proc.returncode == 2, proc.stderr
    assert "stdin is not a terminal" in proc.stderr and "--yes" in proc.stderr and "Traceback" not in proc.stderr
    assert len(_app_containers(engine, docker_env, team_name)) == 2
    assert _history(project, docker_env, team_name)[0]["state"] == "switched"

    proc = run_elfctl("team", "rm", team_name, "--yes", cwd=project, env=docker_env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"team {team_name}: stopped on docker" in proc.stdout
    assert "history kept: 1 deployment(s)" in proc.stdout and "--purge removes them" in proc.stdout
    assert f"{folder} is left as it is" in proc.stdout
    assert _app_containers(engine, docker_env, team_name) == []
    assert engine.image_id(deployed["image"])  # images kept
    (rev,) = _history(project, docker_env, team_name)
    assert rev["state"] == "removed" and rev["revision"] == 1

    code, checks = _health(project, docker_env)
    assert f"team:{team_name}" not in checks

    # The folder is still there: a deploy brings the team back as a new revision.
    again = _deploy(project, docker_env, team_name)
    assert again["state"] == "switched" and again["revision"] == 2, again


def test_team_rm_purge_removes_images_and_registry_tags(project, docker_env, team_name, engine, registry_address):
    from elfctl.adapters.registry import Registry

    make_team(project, docker_env, team_name)
    deployed = _deploy(project, docker_env, team_name)
    repo, tag = deployed["image"].rsplit(":", 1)
    registry = Registry(docker_env["ELFCTL_REGISTRY_URL"])
    assert registry.tags(repo) == [tag]

    proc = run_elfctl("team", "rm", team_name, "--yes", "--purge", "--json", cwd=project, env=docker_env,
                      timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["stopped"] is True and out["images_removed"] == [deployed["image"]], out
    assert out["registry_removed"] == [deployed["image"]] and out["kept"] == [], out
    assert engine.image_id(deployed["image"]) is None
    assert registry.digest(repo, tag) is None and registry.tags(repo) == []
    assert _history(project, docker_env, team_name)[0]["state"] == "removed"  # history stays


def test_team_rm_bad_or_unknown_name(project, docker_env):
    assert run_elfctl("db", "migrate", cwd=project, env=docker_env).returncode == 0
    proc = run_elfctl("team", "rm", "Not_A_Name", "--yes", cwd=project, env=docker_env)
    assert proc.returncode == 2 and "'Not_A_Name' is not a DNS-1123 label" in proc.stderr, proc.stderr
    proc = run_elfctl("team", "rm", "nobody-here", "--yes", "--json", cwd=project, env=docker_env)
    assert proc.returncode == 2, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "not_found" and "no team nobody-here" in error["message"], error


def test_team_rm_asks_on_a_terminal(project, docker_env, team_name, engine):
    from tests.terminal import Terminal, wait_for_file

    make_team(project, docker_env, team_name)
    _deploy(project, docker_env, team_name)
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in docker_env.items())
    for answer, code in (("n", "1"), ("y", "0")):
        rc = project / f"rc-{answer}"
        cmd = (f"cd {project} && env {exports} {sys.executable} -m elfctl team rm {team_name}; "
               f"echo $? > {rc}; sleep 60")
        with Terminal(cmd) as term:
            screen = term.wait_for("Go ahead?")
            assert f"Stop team {team_name} on docker; its deployment history is kept" in screen
            term.send_keys(answer, "Enter")
            assert wait_for_file(rc).strip() == code, term.screen()
            if answer == "n":
                assert "nothing changed" in term.screen()
                assert len(_app_containers(engine, docker_env, team_name)) == 2
    assert _app_containers(engine, docker_env, team_name) == []
