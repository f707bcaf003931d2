"""The LLM gateway key on Kubernetes (kmock's emulator through the real client, real build and
registry): each revision's key lives in its own Secret, the Pod spec refers to it by name only,
the ConfigMap carries OPENAI_BASE_URL (the gateway's Service); the replaced revision's Secret goes
and its key is revoked once the rollout is done; a failed rollout's Secret and key go at once;
`team rm` removes them all."""

from __future__ import annotations

import base64
import json
import time

from tests.deploy.conftest import docker_env, engine, make_team, registry_address, set_version, team_name  # noqa: F401
from tests.deploy.test_gateway_keys import _authenticate, _keys
from tests.k8s.emulator import COMPLETE, CRASH, STUCK

NS = "elf-gw"


def _gateway_secrets(emulator, team) -> dict[str, str]:
    """Secret name -> the key it holds, for the team's gateway-key Secrets."""
    out = {}
    for (res, ns, name), obj in list(emulator.k.objects.items()):
        if res.plural == "secrets" and ns == NS and not obj.deleted and name.startswith(f"{team}-gateway-"):
            raw = obj.raw
            data = {**{k: base64.b64decode(v).decode() for k, v in (raw.get("data") or {}).items()},
                    **(raw.get("stringData") or {})}
            out[name] = data["OPENAI_API_KEY"]
    return out


def test_revision_keys_live_in_their_own_secrets(project, kubeconfig, emulator, controller, docker_env,  # noqa: F811
                                                 team_name, elfctl):  # noqa: F811
    env = {**docker_env, "ELFCTL_KUBERNETES_NAMESPACE": NS, "ELFCTL_KUBERNETES_POLL_S": "0.05",
           "ELFCTL_DEPLOY_TARGET": "kubernetes"}
    folder = make_team(project, env, team_name)

    def deploy(rc=0):
        proc = elfctl("deploy", team_name, "--json", cwd=project, env=env, timeout=240)
        assert proc.returncode == rc, proc.stdout + proc.stderr
        assert not any(k.split("_")[-1] in proc.stdout + proc.stderr for k in _gateway_secrets(emulator, team_name)
                       .values())
        return json.loads(proc.stdout)

    first = deploy()
    assert first["state"] == "switched"
    secrets = _gateway_secrets(emulator, team_name)
    assert list(secrets) == [f"{team_name}-gateway-r1"]
    assert _authenticate(project, secrets[f"{team_name}-gateway-r1"]).revision == 1

    dep = emulator.obj("apps/v1/deployments", NS, team_name)
    [container] = dep["spec"]["template"]["spec"]["containers"]
    [key] = [e for e in container["env"] if e["name"] == "OPENAI_API_KEY"]
    assert key == {"name": "OPENAI_API_KEY",
                   "valueFrom": {"secretKeyRef": {"name": f"{team_name}-gateway-r1", "key": "OPENAI_API_KEY"}}}
    assert secrets[f"{team_name}-gateway-r1"] not in json.dumps(dep)
    cm = emulator.obj("v1/configmaps", NS, f"{team_name}-env")
    assert cm["data"]["OPENAI_BASE_URL"] == f"http://elfctl-gateway.{NS}.svc:18400/v1"

    set_version(folder, "v2")
    second = deploy()
    v1, v2 = f"{first['image']}@{first['digest']}", f"{second['image']}@{second['digest']}"
    secrets = _gateway_secrets(emulator, team_name)
    assert list(secrets) == [f"{team_name}-gateway-r2"]  # revision 1's pods are gone, so is its Secret
    keys = _keys(project, env)
    assert keys[1]["revoked_at"] is not None and keys[2]["revoked_at"] is None

    # A rollout that never completes: restored to revision 2, whose Secret and key stay.
    controller.behaviour.update({v1: COMPLETE, v2: COMPLETE})
    controller.fallback = STUCK
    set_version(folder, "v3")
    third = deploy(rc=1)
    assert third["state"] == "rolled_back" and "restored revision 2" in third["reason"]
    assert list(_gateway_secrets(emulator, team_name)) == [f"{team_name}-gateway-r2"]
    keys = _keys(project, env)
    assert keys[3]["revoked_at"] is not None and keys[2]["revoked_at"] is None

    # The API refuses to delete Secrets: the new revision still serves (a warning names what is
    # left), and the replaced revision's key is revoked all the same.
    controller.fallback = COMPLETE
    emulator.k.forbidden.add(("delete", "secrets"))
    set_version(folder, "v4")
    fourth = deploy()
    assert fourth["state"] == "switched" and fourth["revision"] == 4
    assert any("gateway-key Secrets of" in w and "not deleted" in w for w in fourth["warnings"]), fourth
    assert sorted(_gateway_secrets(emulator, team_name)) == [f"{team_name}-gateway-r2", f"{team_name}-gateway-r4"]
    keys = _keys(project, env)
    assert keys[2]["revoked_at"] is not None and keys[4]["revoked_at"] is None
    emulator.k.forbidden.clear()

    removed = elfctl("team", "rm", team_name, "--yes", "--json", cwd=project, env=env)
    assert removed.returncode == 0, removed.stderr
    assert _gateway_secrets(emulator, team_name) == {}
    assert all(k["revoked_at"] is not None for k in _keys(project, env).values())


def _gateway_check(project, elfctl) -> dict:
    proc = elfctl("health", "--component", "gateway", "--json", cwd=project)
    assert proc.returncode in (0, 1), proc.stderr
    [check] = json.loads(proc.stdout)["checks"]["gateway"]
    return {**check, "rc": proc.returncode}


def test_health_gateway_component_reads_its_deployment(k8s_project, kubeconfig, controller, elfctl):
    """`elfctl health` on Kubernetes: no gateway Deployment is `not configured` (a warning); its
    ready replicas and pods decide once there is one (a crash-looping pod fails)."""
    from elfctl.adapters.kubernetes import KubeCluster
    from elfctl.domain import k8s_manifests as m

    check = _gateway_check(k8s_project, elfctl)
    assert check["rc"] == 0 and check["status"] == "warn", check
    assert check["output"].startswith("not configured: no Deployment elfctl-gateway in elf-test")

    labels = {"app.kubernetes.io/name": "elfctl-gateway", **m.MANAGED_BY}

    def gateway(image: str) -> dict:  # the gateway's Deployment as `infra up` would make it, 2 replicas
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "elfctl-gateway", "namespace": "elf-test", "labels": labels},
                "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "gateway", "image": image}]}}}}

    cluster = KubeCluster(str(kubeconfig))
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elf-test"}})
    cluster.apply(gateway("gw:1"))
    deadline = time.monotonic() + 10
    while (check := _gateway_check(k8s_project, elfctl))["status"] != "pass":
        assert time.monotonic() < deadline, check
    assert check["observedValue"] == 2 and "2/2 ready" in check["output"]

    controller.fallback = CRASH  # a new version whose pods keep exiting
    cluster.apply(gateway("gw:2"))
    deadline = time.monotonic() + 10
    while (check := _gateway_check(k8s_project, elfctl))["status"] != "fail":
        assert time.monotonic() < deadline, check
    assert check["rc"] == 1 and "describe deployment elfctl-gateway" in check["hint"]
    cluster.close()
