"""KubernetesTarget against kmock's emulator through the real `kubernetes` client: what a user of
`deploy`/`rollback`/`health` on a cluster would notice."""

from __future__ import annotations

import json

import pytest

from elfctl.adapters.kubernetes import Forbidden
from elfctl.errors import Unreachable
from tests.k8s.conftest import SECRET_VALUE, image
from tests.k8s.emulator import CRASH, PULL, SLOW, STUCK

NS = "elf-test"
DEP = "apps/v1/deployments"


def live_image(emulator) -> str:
    return emulator.obj(DEP, NS, "mkt")["spec"]["template"]["spec"]["containers"][0]["image"]


def test_first_deploy_creates_namespace_secret_and_objects(target, spec, emulator):
    changed, details = target.prepare()
    assert changed and f"namespace {NS} created" in details
    r = target.rollout(spec, image("v1"), 1, {"ELF_TEAM": "mkt"}, {}, deadline_s=10)
    assert r.ok, r.reason
    assert "2/2 replicas ready" in r.reason and not r.warnings
    dep = emulator.obj(DEP, NS, "mkt")
    assert live_image(emulator) == image("v1")
    assert dep["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "elfctl"
    assert dep["metadata"]["annotations"]["elfctl.dev/revision"] == "1"
    cm = emulator.obj("v1/configmaps", NS, "mkt-env")
    assert cm["data"] == {"ELF_TEAM": "mkt", "LOG_LEVEL": "info"}
    secret = emulator.obj("v1/secrets", NS, "mkt-secrets")
    assert secret["stringData"] == {"MKT_API_KEY": SECRET_VALUE}  # the value reached the cluster only here
    pull = emulator.obj("v1/secrets", NS, "elfctl-registry")
    assert pull["type"] == "kubernetes.io/dockerconfigjson"
    assert target.serving("mkt") == image("v1").split("@")[0]  # as the deploy service names it


def test_prepare_twice_changes_nothing(target, emulator):
    assert target.prepare()[0]
    before = len(emulator.k.writes)
    changed, details = target.prepare()
    assert not changed and "up to date" in details
    assert emulator.k.writes[before:] == []


def test_unchanged_redeploy_writes_nothing(target, spec, emulator):
    target.prepare()
    assert target.rollout(spec, image("v1"), 1, {}, {}, 10).ok
    before = len(emulator.k.writes)
    r = target.rollout(spec, image("v1"), 2, {}, {}, 10)
    assert r.ok and not r.changed and r.reason.startswith("unchanged")
    assert emulator.k.writes[before:] == []


def test_changed_version_rolls_out_after_progressing(target, spec, emulator, controller):
    target.prepare()
    assert target.rollout(spec, image("v1"), 1, {}, {}, 10).ok
    controller.behaviour[image("v2")] = SLOW
    seen = []
    target.progress = seen.append
    r = target.rollout(spec, image("v2"), 2, {}, {}, 10)
    assert r.ok, r.reason
    assert live_image(emulator) == image("v2")
    assert any("new replicas updated" in s or "available" in s or "observed" in s for s in seen)
    gen = emulator.obj(DEP, NS, "mkt")["metadata"]["generation"]
    assert gen == 2


def test_rotated_secret_restarts_the_pods_and_an_unchanged_one_does_not(target, spec, emulator):
    from elfctl.domain.secret import Secret

    def pod_annotations():
        return emulator.obj(DEP, NS, "mkt")["spec"]["template"]["metadata"]["annotations"]

    target.prepare()
    assert target.rollout(spec, image("v1"), 1, {}, {"MKT_API_KEY": Secret("first-value")}, 10).ok
    first = pod_annotations()["elfctl.dev/secret-id"]
    gen = emulator.obj(DEP, NS, "mkt")["metadata"]["generation"]
    r = target.rollout(spec, image("v1"), 2, {}, {"MKT_API_KEY": Secret("rotated-value")}, 10)
    assert r.ok and r.changed, r.reason
    assert emulator.obj("v1/secrets", NS, "mkt-secrets")["stringData"] == {"MKT_API_KEY": "rotated-value"}
    assert pod_annotations()["elfctl.dev/secret-id"] != first
    assert emulator.obj(DEP, NS, "mkt")["metadata"]["generation"] == gen + 1  # the pods roll
    assert "rotated-value" not in json.dumps(emulator.obj(DEP, NS, "mkt"))
    before = len(emulator.k.writes)
    r = target.rollout(spec, image("v1"), 3, {}, {"MKT_API_KEY": Secret("rotated-value")}, 10)
    assert r.ok and not r.changed and emulator.k.writes[before:] == []


def test_secrets_as_files_mounts_the_secret(target, spec, emulator):
    import dataclasses

    files = dataclasses.replace(spec, secrets_as="files")
    target.prepare()
    assert target.rollout(files, image("v1"), 1, {}, {}, 10).ok
    pod = emulator.obj(DEP, NS, "mkt")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert {"name": "MKT_API_KEY_FILE", "value": "/run/secrets/MKT_API_KEY"} in container["env"]
    assert not any("valueFrom" in e for e in container["env"])
    assert container["volumeMounts"] == [{"name": "secrets", "mountPath": "/run/secrets", "readOnly": True}]
    assert pod["volumes"][0]["secret"]["secretName"] == "mkt-secrets"


def test_stuck_rollout_is_rolled_back_to_the_previous_revision(target, spec, emulator, controller):
    target.prepare()
    assert target.rollout(spec, image("v1"), 1, {}, {}, 10).ok
    controller.behaviour[image("v2")] = STUCK
    r = target.rollout(spec, image("v2"), 2, {}, {}, 10)
    assert not r.ok
    assert "exceeded its progress deadline" in r.reason
    assert "restored revision 1" in r.reason
    assert live_image(emulator) == image("v1")
    assert target.team_status("mkt").status == "pass"


def test_crashlooping_pods_fail_fast_with_their_log_and_restore(target, spec, emulator, controller):
    target.prepare()
    assert target.rollout(spec, image("v1"), 1, {}, {}, 10).ok
    controller.behaviour[image("v2")] = CRASH
    emulator.k.pod_logs.update({f"mkt-{abs(hash(image('v2'))) % 10**6}-0":
                                f"booting\nusing key {SECRET_VALUE}\npanic: no config\n"})
    r = target.rollout(spec, image("v2"), 2, {}, {}, deadline_s=60)
    assert not r.ok and "CrashLoopBackOff" in r.reason
    assert "panic: no config" in r.logs
    assert SECRET_VALUE not in r.logs and SECRET_VALUE not in r.reason
    assert live_image(emulator) == image("v1")


def test_failed_first_deploy_leaves_nothing(target, spec, emulator, controller):
    target.prepare()
    controller.behaviour[image("v1")] = PULL
    r = target.rollout(spec, image("v1"), 1, {}, {}, 10)
    assert not r.ok and "ImagePullBackOff" in r.reason and "removed" in r.reason
    assert emulator.obj(DEP, NS, "mkt") is None
    assert target.serving("mkt") is None


def test_timeout_budget_is_a_failure_not_a_hang(target, spec, emulator, controller):
    target.prepare()
    assert target.rollout(spec, image("v1"), 1, {}, {}, 10).ok
    controller.behaviour[image("v2")] = "never"  # progressing forever
    r = target.rollout(spec, image("v2"), 2, {}, {}, deadline_s=0.5)
    assert not r.ok and "not rolled out within 0.5s" in r.reason
    assert live_image(emulator) == image("v1")


def test_rollback_to_an_earlier_revision(target, spec, emulator):
    target.prepare()
    for rev, tag in ((1, "v1"), (2, "v2")):
        assert target.rollout(spec, image(tag), rev, {}, {}, 10).ok
    # What `elfctl rollback mkt --to 1` asks of the target: revision 1's image, as a new rollout.
    r = target.rollout(spec, image("v1"), 1, {}, {}, 10)
    assert r.ok and r.changed
    assert live_image(emulator) == image("v1")
    assert target.team_status("mkt").revision == "1"


def test_status_reports_the_worst_pod_reason(target, spec, emulator, controller):
    target.prepare()
    controller.behaviour[image("v1")] = CRASH
    target.rollout(spec, image("v1"), 1, {}, {}, 10)
    # Deployed again by hand, still crashing: health names the reason.
    controller.behaviour[image("v9")] = CRASH
    from elfctl.services.deploy.k8s import team_probe

    target.cluster.apply(target.render(spec, image("v9"), 9)[2])
    import time
    deadline = time.monotonic() + 30  # a wait bound, generous for a loaded host
    while time.monotonic() < deadline and (target.team_status("mkt").worst is None):
        time.sleep(0.05)
    check = team_probe(target, "mkt")()
    assert check.status == "fail" and "CrashLoopBackOff" in check.output and "elfctl logs mkt" in check.hint


def test_logs_and_stop(target, spec, emulator):
    target.prepare()
    assert target.rollout(spec, image("v1"), 1, {}, {}, 10).ok
    pods = [n for (r, ns, n), o in emulator.k.objects.items() if r.plural == "pods" and not o.deleted]
    emulator.k.pod_logs.update({p: f"hello from {p}\n" for p in pods})
    lines = list(target.logs("mkt", tail=10))
    assert sorted(lines) == sorted(f"[{p}] hello from {p}" for p in pods)
    followed = list(target.logs("mkt", tail=10, follow=True))  # streams one pod until the server ends it
    assert len(followed) == 1 and followed[0].startswith("hello from mkt-")
    assert target.stop("mkt") is True
    assert emulator.obj(DEP, NS, "mkt") is None and target.stop("mkt") is False


def test_forbidden_names_the_verb_and_resource(target, spec, emulator):
    target.prepare()
    emulator.k.forbidden.add(("create", "deployments"))
    with pytest.raises(Forbidden) as exc:
        target.rollout(spec, image("v1"), 1, {}, {}, 10)
    assert "create deployments.apps/mkt in namespace elf-test" in exc.value.message
    assert "403" in exc.value.message and "kubectl auth can-i create deployments.apps" in exc.value.hint


def test_unreachable_api_is_unreachable(target, spec, emulator):
    emulator.stop()
    with pytest.raises(Unreachable) as exc:
        target.prepare()
    assert exc.value.exit_code == 3 and "unreachable" in exc.value.message
