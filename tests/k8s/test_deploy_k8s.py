"""`elfctl deploy/rollback/deployments/logs --target kubernetes` end to end: a real Docker build and
push to the real registry, then the rollout on the emulated cluster through the real client. The
deploy service (lock, state machine, history) is the same as on Docker."""

from __future__ import annotations

import json

import yaml

from tests.deploy.conftest import docker_env, engine, make_team, registry_address, set_version, team_name  # noqa: F401
from tests.k8s.emulator import COMPLETE, STUCK

NS = "elf-e2e"


def _live(emulator, team):
    dep = emulator.obj("apps/v1/deployments", NS, team)
    return dep and dep["spec"]["template"]["spec"]["containers"][0]["image"]


def test_deploy_render_rollback_logs_on_kubernetes(project, kubeconfig, emulator, controller, docker_env,  # noqa: F811
                                                   team_name, elfctl):  # noqa: F811
    env = {**docker_env, "ELFCTL_KUBERNETES_NAMESPACE": NS, "ELFCTL_KUBERNETES_POLL_S": "0.05"}
    folder = make_team(project, env, team_name)
    k8s = ("--target", "kubernetes")

    def deploy(*args):
        proc = elfctl("deploy", team_name, *k8s, *args, "--json", cwd=project, env=env, timeout=240)
        return proc, (json.loads(proc.stdout) if proc.stdout.strip() else None)

    # --render before anything exists: the would-be image by tag, and no call to the cluster.
    render = elfctl("deploy", team_name, "--render", cwd=project, env=env)
    assert render.returncode == 0, render.stderr
    docs = list(yaml.safe_load_all(render.stdout))
    assert [d["kind"] for d in docs] == ["ConfigMap", "Service", "Deployment"]
    assert f"/elfctl/{team_name}:c-" in docs[2]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert "not in the registry yet" in render.stderr
    assert emulator.k.calls == []

    proc, first = deploy()
    assert proc.returncode == 0, proc.stderr
    assert first["state"] == "switched" and first["built"] and first["pushed"]
    v1 = f"{first['image']}@{first['digest']}"
    assert _live(emulator, team_name) == v1  # pinned by digest on the cluster

    writes = len(emulator.k.writes)
    proc, again = deploy()
    assert again["state"] == "unchanged" and emulator.k.writes[writes:] == []

    pinned = elfctl("deploy", team_name, "--render", cwd=project, env=env)
    assert v1 in pinned.stdout

    set_version(folder, "v2")
    proc, second = deploy()
    assert proc.returncode == 0 and second["state"] == "switched" and second["revision"] == 2
    v2 = f"{second['image']}@{second['digest']}"

    controller.behaviour.update({v1: COMPLETE, v2: COMPLETE})
    controller.fallback = STUCK
    set_version(folder, "v3")
    proc, third = deploy()
    assert proc.returncode == 1 and third["state"] == "rolled_back"
    assert "progress deadline" in third["reason"] and "restored revision 2" in third["reason"]
    assert _live(emulator, team_name) == v2

    back = elfctl("rollback", team_name, "--to", "1", *k8s, "--json", cwd=project, env=env, timeout=120)
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["state"] == "switched" and _live(emulator, team_name) == v1

    hist = json.loads(elfctl("deployments", team_name, "--json", cwd=project, env=env).stdout)
    assert {r["target"] for r in hist} == {"kubernetes"}
    assert [r["state"] for r in hist][:2] == ["switched", "rolled_back"]

    pods = [n for (r, ns, n), o in emulator.k.objects.items()
            if r.plural == "pods" and ns == NS and not o.deleted and o.raw["spec"]["containers"][0]["image"] == v1]
    emulator.k.pod_logs.update({p: "GET /index.html 200\n" for p in pods})
    logs = elfctl("logs", team_name, *k8s, cwd=project, env=env)
    assert logs.returncode == 0 and "GET /index.html 200" in logs.stdout

    kenv = {**env, "ELFCTL_DEPLOY_TARGET": "kubernetes"}
    status = elfctl("infra", "status", "--json", cwd=project, env=kenv)
    assert status.returncode == 0, status.stderr
    assert f"namespace {NS} present: True" in status.stdout and f"team:{team_name}" in status.stdout
    down = elfctl("infra", "down", "--json", cwd=project, env=kenv)
    assert down.returncode == 0, down.stderr
    assert f"team {team_name}" in json.loads(down.stdout)["stopped"] and _live(emulator, team_name) is None
