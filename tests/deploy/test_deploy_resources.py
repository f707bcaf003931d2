"""team.yaml `resources` reach the real Docker engine exactly, and quantities the engine or Kubernetes
would refuse (int64 overflow) are refused by `team validate` and `deploy` before anything starts."""

from __future__ import annotations

import json

from tests.conftest import run_elfctl
from tests.deploy.conftest import make_team


def _resources(folder, cpu: str, memory: str) -> None:
    path = folder / "team.yaml"
    text = path.read_text()
    start, end = text.index("resources:"), text.index("llm:")
    path.write_text(text[:start] + f"resources:\n  cpu: {cpu!r}\n  memory: {memory}\n" + text[end:])


def test_resources_reach_docker_exactly_and_overflow_is_refused(project, docker_env, team_name, engine):
    folder = make_team(project, docker_env, team_name)
    prefix = docker_env["ELFCTL_DEPLOY_PREFIX"]

    _resources(folder, "99999999999", "64Mi")
    for args in (("team", "validate", team_name), ("deploy", team_name)):
        proc = run_elfctl(*args, cwd=project, env=docker_env, timeout=120)
        assert proc.returncode == 2 and "resources.cpu: 99999999999 is out of range" in proc.stderr, proc.stderr
    assert not engine.containers({"elfctl.prefix": prefix, "elfctl.team": team_name}, all_=True)

    _resources(folder, "1.5", "100Mi")
    proc = run_elfctl("deploy", team_name, "--json", cwd=project, env=docker_env, timeout=300)
    assert proc.returncode == 0 and json.loads(proc.stdout)["state"] == "switched", proc.stderr
    apps = engine.containers({"elfctl.prefix": prefix, "elfctl.team": team_name, "elfctl.role": "app"}, all_=False)
    assert apps
    for c in apps:
        host = engine.inspect(c["Id"])["HostConfig"]
        assert host["NanoCpus"] == 1_500_000_000 and host["Memory"] == 100 * 2**20
