"""Against a REAL cluster, only when ELFCTL_TEST_KUBECONFIG names a kubeconfig (marker
`kubernetes_real`; skipped otherwise, also in CI: this machine has no cluster). Everything happens
in a throw-away namespace that is deleted afterwards. The image must be pullable by the cluster and
answer HTTP 200 on / at port 80 (default nginx; ELFCTL_TEST_K8S_IMAGE overrides)."""

from __future__ import annotations

import os
import uuid

import pytest

from elfctl.adapters.kubernetes import KubeCluster
from elfctl.adapters.kubernetes_target import KubernetesTarget
from elfctl.domain.team import parse

KUBECONFIG = os.environ.get("ELFCTL_TEST_KUBECONFIG")
IMAGE = os.environ.get("ELFCTL_TEST_K8S_IMAGE", "nginx:1.27-alpine")
pytestmark = [pytest.mark.kubernetes_real,
              pytest.mark.skipif(not KUBECONFIG, reason="set ELFCTL_TEST_KUBECONFIG to run against a real cluster")]


@pytest.fixture
def real(tmp_path, monkeypatch):
    ns = f"elfctl-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("ELFCTL_REAL_TEST_KEY", "real-cluster-secret-" + uuid.uuid4().hex)
    team = tmp_path / "teams" / "web" / "team.yaml"
    team.parent.mkdir(parents=True)
    spec = parse({"name": "web", "port": 80, "replicas": 1, "secrets": ["ELFCTL_REAL_TEST_KEY"],
                  "health": {"path": "/", "start_timeout_s": 120}}, team, "web")
    cluster = KubeCluster(KUBECONFIG, os.environ.get("ELFCTL_TEST_KUBE_CONTEXT"), 20)
    target = KubernetesTarget(cluster, ns, "test", lambda: [spec], poll_s=1.0, restore_timeout_s=180,
                              secret_values=lambda s: {"ELFCTL_REAL_TEST_KEY": os.environ["ELFCTL_REAL_TEST_KEY"]})
    yield target, spec
    cluster.delete("Namespace", ns)
    cluster.close()


def test_real_cluster_answers(real):
    target, _ = real
    info = target.cluster_status()
    assert info["version"].startswith("v1.") and info["namespace_present"] is False


def test_real_prepare_deploy_fail_restore(real):
    target, spec = real
    assert target.prepare()[0] and not target.prepare()[0]
    ok = target.rollout(spec, IMAGE, 1, {}, {}, deadline_s=180)
    assert ok.ok, ok.reason
    assert target.team_status("web").status == "pass"
    bad = target.rollout(spec, "registry.invalid/elfctl/nothing:0", 2, {}, {}, deadline_s=90)
    assert not bad.ok and "restored revision 1" in bad.reason, bad.reason
    assert target.serving("web") == IMAGE
    assert target.stop("web")
