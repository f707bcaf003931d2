"""`elfctl team rm` on the Kubernetes target: the target's own stop (Deployment, Service, ConfigMap
gone from the emulated cluster), the history kept and the serving revision recorded removed."""

from __future__ import annotations

import json

from tests.deploy.conftest import docker_env, engine, make_team, registry_address, team_name  # noqa: F401
from tests.k8s.emulator import COMPLETE

NS = "elf-rm"


def test_team_rm_on_kubernetes(project, kubeconfig, emulator, controller, docker_env, team_name, elfctl):  # noqa: F811
    env = {**docker_env, "ELFCTL_KUBERNETES_NAMESPACE": NS, "ELFCTL_KUBERNETES_POLL_S": "0.05",
           "ELFCTL_DEPLOY_TARGET": "kubernetes"}
    make_team(project, env, team_name)
    controller.fallback = COMPLETE
    proc = elfctl("deploy", team_name, "--json", cwd=project, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert emulator.obj("apps/v1/deployments", NS, team_name) is not None

    proc = elfctl("team", "rm", team_name, "--yes", "--json", cwd=project, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["target"] == "kubernetes" and out["stopped"] is True and out["removed_revisions"] == [1], out
    assert emulator.obj("apps/v1/deployments", NS, team_name) is None
    assert emulator.obj("v1/services", NS, team_name) is None
    proc = elfctl("deployments", team_name, "--json", cwd=project, env=env)
    assert [r["state"] for r in json.loads(proc.stdout)] == ["removed"]
