"""`infra up`'s gateway step on Kubernetes (kmock's emulator, the real `kubernetes` client): a
Deployment (2 replicas) and a Service `elfctl-gateway`, secrets by reference only, written once,
rolled when the Secret changes, removed by `infra down`; on a SQLite store it says a cluster gateway
needs Postgres and writes nothing."""

from __future__ import annotations

import json
import time

from elfctl.services.platform import gateway as gateway_svc
from tests.k8s.conftest import image

NS = "elf-test"
PASSWORD = "pg-pass-do-not-print-42"
CANARY = "sk-canary-provider-key-0123456789"


def _gateway(**secret) -> gateway_svc.Gateway:
    return gateway_svc.Gateway(
        container="unused", network="unused", port=18400, publish_address="127.0.0.1",
        env=gateway_svc.plain_env({"gateway.workers": 1, "llm.timeout_s": 30.0}, 18400),
        secret_env={"ELFCTL_STORE_URL": f"postgresql://elf:{PASSWORD}@db.internal:5432/elf",
                    "OPENAI_API_KEY": CANARY, **secret})


def test_deployment_and_service_written_once_secrets_by_reference(target, emulator, controller):
    target.prepare()
    before = len(emulator.k.writes)
    changed, details = gateway_svc.kubernetes_step(target, _gateway(), lambda: (False, "", image("gw1")))
    assert changed and "Deployment elfctl-gateway created" in details and "Service elfctl-gateway created" in details
    assert f"http://elfctl-gateway.{NS}.svc:18400/v1" in details
    assert CANARY not in details and PASSWORD not in details

    dep = emulator.obj("apps/v1/deployments", NS, "elfctl-gateway")
    assert dep["spec"]["replicas"] == 2
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == image("gw1") and container["args"] == ["gateway", "serve"]
    assert container["envFrom"] == [{"secretRef": {"name": "elfctl-gateway-secrets"}}]
    assert {"name": "ELFCTL_GATEWAY_HOST", "value": "0.0.0.0"} in container["env"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    svc = emulator.obj("v1/services", NS, "elfctl-gateway")
    assert svc["spec"]["ports"][0]["port"] == 18400 and svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    secret = emulator.obj("v1/secrets", NS, "elfctl-gateway-secrets")
    assert secret["stringData"]["OPENAI_API_KEY"] == CANARY  # the value reaches the cluster only here
    assert CANARY not in json.dumps(dep) + json.dumps(svc) and PASSWORD not in json.dumps(dep)

    # The controller rolls it out: the Deployment is what `elfctl health` reads for `gateway`.
    deadline = time.monotonic() + 10
    while target.team_status("elfctl-gateway").ready < 2:
        assert time.monotonic() < deadline, "gateway Deployment not ready"
        time.sleep(0.05)

    writes = len(emulator.k.writes)
    again, details = gateway_svc.kubernetes_step(target, _gateway(), lambda: (False, "", image("gw1")))
    assert not again and "unchanged" in details and emulator.k.writes[writes:] == []
    assert len(emulator.k.writes) > before

    # A rotated provider key: the Secret is rewritten and the pods roll (env is read at start).
    old_id = dep["spec"]["template"]["metadata"]["annotations"]["elfctl.dev/secret-id"]
    rotated, details = gateway_svc.kubernetes_step(target, _gateway(OPENAI_API_KEY="sk-rotated-9876543210"),
                                                   lambda: (False, "", image("gw1")))
    assert rotated and "Secret elfctl-gateway-secrets written" in details and "Deployment elfctl-gateway updated" in details
    dep = emulator.obj("apps/v1/deployments", NS, "elfctl-gateway")
    assert dep["spec"]["template"]["metadata"]["annotations"]["elfctl.dev/secret-id"] != old_id

    assert gateway_svc.kubernetes_down(target) is True
    for kind, name in (("apps/v1/deployments", "elfctl-gateway"), ("v1/services", "elfctl-gateway"),
                       ("v1/secrets", "elfctl-gateway-secrets")):
        assert emulator.obj(kind, NS, name) is None


def test_sqlite_store_says_a_cluster_gateway_needs_postgres(k8s_project, emulator, elfctl):
    proc = elfctl("infra", "up", "--only", "gateway", cwd=k8s_project)
    assert proc.returncode == 2, proc.stderr
    assert "a gateway on Kubernetes needs a Postgres store" in proc.stderr and "store.url" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert emulator.obj("apps/v1/deployments", NS, "elfctl-gateway") is None


def test_dry_run_plans_the_gateway(k8s_project, emulator, elfctl):
    proc = elfctl("infra", "up", "--dry-run", "--json", cwd=k8s_project)
    assert proc.returncode == 0, proc.stderr
    steps = {s["name"]: s for s in json.loads(proc.stdout)["steps"]}
    assert list(steps)[-2:] == ["gateway", "teams"]
    assert "Deployment (2 replicas) and Service elfctl-gateway" in steps["gateway"]["details"]
    assert emulator.k.writes == []
