"""`infra up/status/down` with the local registry container and a team, on the real engine."""

from __future__ import annotations

import json

from tests import realservices
from tests.conftest import run_elfctl
from tests.deploy.conftest import make_team


def test_infra_up_is_idempotent_and_down_keeps_data_unless_purged(project, docker_env, team_name, engine):
    tag = docker_env["ELFCTL_DEPLOY_PREFIX"]
    env = {k: v for k, v in docker_env.items() if k != "ELFCTL_REGISTRY_URL"}
    env.update(
        {
            "ELFCTL_REGISTRY_PORT": str(realservices.free_port()),
            "ELFCTL_REGISTRY_CONTAINER": f"{tag}-registry",
            "ELFCTL_REGISTRY_VOLUME": f"{tag}-registry-data",
            "ELFCTL_REGISTRY_IMAGE": f"{tag}/registry:local",
            "ELFCTL_GATEWAY_PORT": str(realservices.free_port()),  # no other test's gateway answers there
        }
    )
    make_team(project, env, team_name)
    try:
        plan = run_elfctl("infra", "up", "--dry-run", "--json", cwd=project, env=env)
        assert plan.returncode == 0, plan.stderr
        assert [s["outcome"] for s in json.loads(plan.stdout)["steps"]] == ["planned"] * 6
        assert engine.inspect(env["ELFCTL_REGISTRY_CONTAINER"]) is None

        first = run_elfctl("infra", "up", "--skip", "gateway", "--json", cwd=project, env=env, timeout=180)
        assert first.returncode == 0, first.stderr
        data = json.loads(first.stdout)
        steps = {s["name"]: s for s in data["steps"]}
        # the gateway has its own tests (test_infra_gateway.py): its image takes minutes to build
        assert list(steps) == ["environment", "store", "registry", "target", "gateway", "teams"]
        assert (
            steps["registry"]["outcome"] == "changed" and "started container" in steps["registry"]["details"]
        )
        assert steps["teams"]["outcome"] == "changed" and "switched" in steps["teams"]["details"]
        assert _passing_but_skipped_gateway(data["health"]), _not_passing(data["health"])
        assert set(data["health"]["checks"]) >= {"store", "docker", "registry", f"team:{team_name}"}

        proc = run_elfctl("infra", "up", "--skip", "gateway", "--json", cwd=project, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        second = json.loads(proc.stdout)
        assert second["changed"] is False and _passing_but_skipped_gateway(second["health"]), \
            _not_passing(second["health"])

        assert run_elfctl("infra", "status", cwd=project, env=env).returncode == 0

        down = run_elfctl("infra", "down", "--json", cwd=project, env=env)
        assert down.returncode == 0, down.stderr
        assert any("registry" in s for s in json.loads(down.stdout)["stopped"])
        health = run_elfctl("health", "--json", cwd=project, env=env)
        assert health.returncode == 1
        assert run_elfctl("infra", "status", cwd=project, env=env).returncode == 1

        # Data was kept: the registry still holds the team's image, so nothing is rebuilt or pushed.
        proc = run_elfctl("infra", "up", "--skip", "gateway", "--json", cwd=project, env=env, timeout=180)
        assert proc.returncode == 0, proc.stderr
        again = json.loads(proc.stdout)
        assert _passing_but_skipped_gateway(again["health"]), _not_passing(again["health"])
        proc = run_elfctl("deployments", team_name, "--json", cwd=project, env=env)
        assert proc.returncode == 0, proc.stderr
        history = json.loads(proc.stdout)
        assert history[0]["state"] == "switched" and history[0]["details"]["pushed"] is False

        proc = run_elfctl("infra", "down", "--purge", "--json", cwd=project, env=env)
        assert proc.returncode == 0, proc.stderr
        purge = json.loads(proc.stdout)
        assert f"volume {env['ELFCTL_REGISTRY_VOLUME']}" in purge["removed"]
    finally:
        engine.remove(env["ELFCTL_REGISTRY_CONTAINER"], grace_s=0)
        engine.remove_volume(env["ELFCTL_REGISTRY_VOLUME"])
        engine.remove_image(env["ELFCTL_REGISTRY_IMAGE"])


def _passing_but_skipped_gateway(health: dict) -> bool:
    """--skip gateway: every component passes but the gateway, honestly `not configured` (a warning)."""
    others = [e for name, entries in health["checks"].items() if name != "gateway" for e in entries]
    [gateway] = health["checks"]["gateway"]
    return (all(e["status"] == "pass" for e in others) and gateway["status"] == "warn"
            and gateway["output"].startswith("not configured:"))


def _not_passing(health: dict) -> dict:
    """The checks that did not pass, for the assertion message."""
    return {name: entries for name, entries in health["checks"].items() if entries[0]["status"] != "pass"}


def test_no_docker_engine_is_one_clear_message_with_how_to_install(project, tmp_path):
    """Where no engine answers (and none can be started), `infra up` says how to install one: exit 3."""
    import uuid

    assert run_elfctl("team", "new", "lonely", cwd=project).returncode == 0
    env = {"ELFCTL_DOCKER_HOST": f"unix://{tmp_path / uuid.uuid4().hex}.sock"}
    proc = run_elfctl("infra", "up", cwd=project, env=env)
    assert proc.returncode == 3
    assert "Docker engine not reachable" in proc.stderr and "apt-get install docker.io" in proc.stderr
    assert "Traceback" not in proc.stderr
