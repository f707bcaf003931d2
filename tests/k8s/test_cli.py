"""The commands a user runs against a cluster (emulated), in a subprocess: output, exit codes,
and that a secret value never shows up in any of it."""

from __future__ import annotations

import json

import yaml

from tests.k8s.conftest import SECRET_VALUE, closed_registry, image


def _no_secret(proc):
    assert SECRET_VALUE not in proc.stdout and SECRET_VALUE not in proc.stderr


def test_render_prints_valid_manifests_without_touching_the_cluster(k8s_project, emulator, elfctl):
    from kubernetes_validate import utils

    proc = elfctl("k8s", "render", "mkt", "--image", image("v1"), "--revision", "4", cwd=k8s_project)
    assert proc.returncode == 0, proc.stderr
    docs = list(yaml.safe_load_all(proc.stdout))
    assert [d["kind"] for d in docs] == ["ConfigMap", "Service", "Deployment"]
    for doc in docs:
        utils.validate(doc, "1.26", strict=True)
    container = docs[2]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == image("v1")
    assert container["env"] == [{"name": "MKT_API_KEY", "valueFrom": {"secretKeyRef": {
        "name": "mkt-secrets", "key": "MKT_API_KEY"}}},  # the LLM gateway's key: the revision's own Secret
        {"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "mkt-gateway-r4", "key": "OPENAI_API_KEY"}}}]
    assert docs[0]["data"]["OPENAI_BASE_URL"] == "http://elfctl-gateway.elf-test.svc:18400/v1"
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert docs[2]["metadata"]["namespace"] == "elf-test"
    assert docs[2]["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "elfctl-registry"}]
    _no_secret(proc)
    assert emulator.k.calls == []


def test_render_json_and_unknown_team(k8s_project, elfctl):
    proc = elfctl("k8s", "render", "mkt", "--json", cwd=k8s_project)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["team"] == "mkt" and data["secrets_by_name"] == ["MKT_API_KEY", "OPENAI_API_KEY"]
    assert "kind: Deployment" in data["yaml"]
    bad = elfctl("k8s", "render", "mtk", cwd=k8s_project)
    assert bad.returncode == 2 and "did you mean 'mkt'" in bad.stderr and "Traceback" not in bad.stderr


def test_infra_up_dry_run_shows_the_plan_by_name_only(k8s_project, emulator, elfctl):
    proc = elfctl("infra", "up", "--dry-run", "--json", cwd=k8s_project)
    assert proc.returncode == 0, proc.stderr
    steps = {s["name"]: s for s in json.loads(proc.stdout)["steps"]}
    plan = steps["target"]["details"]
    assert "namespace elf-test" in plan and "Secret mkt-secrets with keys MKT_API_KEY" in plan
    assert "elfctl-registry for registry registry.test:5000" in plan
    _no_secret(proc)
    assert emulator.k.writes == []


def test_infra_up_is_idempotent_and_health_shows_the_cluster(k8s_project, emulator, controller, elfctl):
    # Only the store and the cluster: Docker and the registry (for building) have their own tests.
    env = closed_registry()
    first = elfctl("--debug", "infra", "up", "--only", "store", "--only", "target", cwd=k8s_project, env=env)
    assert first.returncode == 1, first.stderr[-3000:]
    assert "namespace elf-test created" in first.stdout, first.stdout + first.stderr
    _no_secret(first)
    second = elfctl("infra", "up", "--only", "store", "--only", "target", "--json", cwd=k8s_project, env=env)
    assert second.returncode == 1, second.stderr
    data = json.loads(second.stdout)
    assert data["changed"] is False and data["health"]["status"] == "fail"
    assert data["health"]["checks"]["registry"][0]["status"] == "fail"
    assert {s["name"]: s["outcome"] for s in data["steps"]}["target"] == "unchanged"
    checks = data["health"]["checks"]
    assert checks["kubernetes"][0]["status"] == "pass" and checks["kubernetes"][0]["observedValue"] == "v1.26.4+k3s1"
    assert checks["team:mkt"][0]["status"] == "warn" and "not deployed" in checks["team:mkt"][0]["output"]
    _no_secret(second)


def test_health_shows_a_deployed_team(target, spec, elfctl, k8s_project):
    target.prepare()
    assert target.rollout(spec, image("v1"), 3, {}, {}, 10).ok
    proc = elfctl("health", "--json", "-c", "team:mkt", "-c", "kubernetes", cwd=k8s_project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check = json.loads(proc.stdout)["checks"]["team:mkt"][0]
    assert check["status"] == "pass" and check["observedValue"] == 2 and "revision 3" in check["output"]


def test_unreachable_cluster_exits_3(k8s_project, emulator, elfctl):
    emulator.stop()
    proc = elfctl("infra", "up", "--only", "target", cwd=k8s_project)
    assert proc.returncode == 3, proc.stderr
    assert "Kubernetes API" in proc.stderr and "unreachable" in proc.stderr and "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr
    js = elfctl("infra", "up", "--only", "target", "--json", cwd=k8s_project)
    assert js.returncode == 3 and json.loads(js.stdout)["error"]["code"] == "unreachable"


def test_forbidden_names_verb_and_resource(k8s_project, emulator, elfctl):
    emulator.k.forbidden.add(("create", "namespaces"))
    proc = elfctl("infra", "up", "--only", "target", cwd=k8s_project)
    assert proc.returncode == 1
    assert "refused to create namespaces/elf-test (403 Forbidden)" in proc.stderr
    assert "kubectl auth can-i create namespaces" in proc.stderr


def test_unknown_context_is_a_config_error(k8s_project, emulator, elfctl):
    proc = elfctl("infra", "up", "--only", "target", cwd=k8s_project,
                  env={"ELFCTL_KUBERNETES_CONTEXT": "no-such-context"})
    assert proc.returncode == 2
    assert "no-such-context" in proc.stderr and "kubeconfig" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_secret_value_is_named_not_shown(k8s_project, emulator, elfctl):
    import os

    env = {k: v for k, v in os.environ.items() if k != "MKT_API_KEY"}
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "elfctl", "infra", "up", "--only", "target"], cwd=k8s_project,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "MKT_API_KEY" in proc.stderr


def test_context_is_chosen_as_kubectl_does(k8s_project, emulator, kubeconfig, elfctl, tmp_path):
    """--context picks a context of $KUBECONFIG; a list of kubeconfigs is merged."""
    from tests.realservices import free_port

    other = tmp_path / "other-kubeconfig"
    other.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "dead", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "dead-cluster", "context": {"cluster": "dead", "user": "u"}}]}))
    env = {"KUBECONFIG": f"{kubeconfig}:{other}"}
    ok = elfctl("infra", "up", "--only", "target", "--json", cwd=k8s_project, env={**env, **closed_registry()})
    assert ok.returncode == 1, ok.stderr  # the step passed; the health table fails on the closed registry
    assert "namespace elf-test created" in ok.stdout, ok.stdout + ok.stderr  # the first file's current-context: the emulator
    dead = elfctl("--context", "dead-cluster", "infra", "up", "--only", "target", cwd=k8s_project, env=env)
    assert dead.returncode == 3 and "unreachable" in dead.stderr
