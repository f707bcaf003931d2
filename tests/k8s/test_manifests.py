"""Rendering and rollout reading, without a cluster: every rendered manifest is valid for the
official schemas, secret values never appear, and kubectl's rollout rules hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes_validate import utils

from elfctl.adapters.k8s_schema import schema_version, validate
from elfctl.domain import k8s_manifests as m
from elfctl.domain.k8s_rollout import pod_state, rollout_state, worst_pod
from elfctl.domain.team import parse
from elfctl.errors import OperationFailed
from elfctl.services.deploy.k8s import render_manifests

P = Path("teams/mkt/team.yaml")
DIGEST = "sha256:" + "0" * 64


def spec(**doc):
    return parse({"name": "mkt", **doc}, P, "mkt")


def test_schema_version_follows_the_cluster():
    assert schema_version("v1.26.4+k3s1") == "1.26.0"
    assert schema_version("v1.99.0") == utils.latest_version()  # newer cluster: newest schemas
    assert schema_version("v1.10.0") == sorted(utils.all_versions(), key=lambda v: tuple(map(int, v.split(".")[:2])))[0]
    assert schema_version(None) == utils.latest_version()


def test_objects_are_labelled_and_pinned():
    objs = m.team_objects(spec(secrets=["API_KEY"]), "ns", m.pin_image("r/mkt:1", DIGEST), 7)
    for o in objs:
        assert o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "elfctl"
        assert o["metadata"]["labels"]["elfctl.dev/team"] == "mkt"
    dep = objs[2]
    assert dep["metadata"]["annotations"]["elfctl.dev/revision"] == "7"
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == f"r/mkt:1@{DIGEST}"
    assert m.is_pinned(m.pin_image("r/mkt:1", DIGEST)) and not m.is_pinned("r/mkt:1")
    assert m.pin_image(f"r/mkt:1@{DIGEST}", DIGEST) == f"r/mkt:1@{DIGEST}"


def test_hash_ignores_revision_but_not_content():
    a = m.team_objects(spec(), "ns", "img@" + DIGEST, 1)[2]
    b = m.team_objects(spec(), "ns", "img@" + DIGEST, 2)[2]
    c = m.team_objects(spec(replicas=3), "ns", "img@" + DIGEST, 1)[2]
    h = lambda o: o["metadata"]["annotations"][m.HASH]  # noqa: E731
    assert h(a) == h(b) != h(c)


def test_env_change_rolls_the_pods():
    a = m.team_objects(spec(env={"A": "1"}), "ns", "img", 1)[2]
    b = m.team_objects(spec(env={"A": "2"}), "ns", "img", 1)[2]
    assert a["spec"]["template"] != b["spec"]["template"]


def test_render_never_carries_secret_values(monkeypatch):
    monkeypatch.setenv("API_KEY", "v3ry-secret-value")
    text = render_manifests(spec(secrets=["API_KEY"]), "img@" + DIGEST)
    assert "API_KEY" in text and "v3ry-secret-value" not in text and "kind: Secret" not in text
    assert "&id" not in text  # no YAML anchors: GitOps diffs stay readable


def test_invalid_manifest_is_named():
    objs = m.team_objects(spec(), "ns", "img", 1)
    objs[2]["spec"]["replicas"] = "two"
    with pytest.raises(OperationFailed) as exc:
        validate(objs, "1.30")
    assert "Deployment/mkt" in exc.value.message and "replicas" in exc.value.message


names = st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(port=st.integers(1, 65535), replicas=st.integers(0, 100),
       period=st.floats(0.05, 3600), start=st.floats(0.05, 3600), thr=st.integers(1, 100),
       env=st.dictionaries(names, st.text(max_size=20), max_size=3), secrets=st.lists(names, max_size=3, unique=True),
       cpu=st.sampled_from([None, "100m", "1", "0.5"]), mem=st.sampled_from([None, "64Mi", "1Gi", "500M"]),
       path=st.from_regex(r"/[a-z0-9/_-]{0,20}", fullmatch=True),
       version=st.sampled_from(["1.25", "1.29", "1.33", "1.37"]), secrets_as=st.sampled_from(["env", "files"]))
def test_every_valid_team_renders_valid_manifests(port, replicas, period, start, thr, env, secrets, cpu, mem, path,
                                                  version, secrets_as):
    secrets = [s for s in secrets if s not in env and f"{s}_FILE" not in env]
    res = {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v}
    s = spec(port=port, replicas=replicas, env=env, secrets=secrets, resources=res, secrets_as=secrets_as,
             health={"path": path, "period_s": period, "start_timeout_s": start, "success_threshold": thr,
                     "failure_threshold": thr})
    validate(m.team_objects(s, "ns", "reg:5000/mkt:x@" + DIGEST, 3, pull_secret="pull"), version)


def dep(gen=2, observed=2, replicas=2, updated=2, total=2, available=2, ready=2, conditions=()):
    return {"metadata": {"name": "mkt", "generation": gen}, "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
                       "availableReplicas": available, "readyReplicas": ready, "conditions": list(conditions)}}


@pytest.mark.parametrize("d, done, failed, words", [
    (dep(gen=3), False, False, "observed"),
    (dep(updated=1), False, False, "1 of 2 new replicas"),
    (dep(total=3), False, False, "1 old replicas"),
    (dep(available=1), False, False, "1 of 2 updated replicas available"),
    (dep(ready=1), False, False, "available"),
    (dep(conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "x"}]), False, True,
     "progress deadline"),
    (dep(), True, False, "2/2 replicas ready"),
])
def test_rollout_state_as_kubectl(d, done, failed, words):
    s = rollout_state(d)
    assert (s.done, s.failed) == (done, failed) and words in s.message


def pod(name, **cs):
    return {"metadata": {"name": name}, "spec": {"containers": [{"image": "i"}]},
            "status": {"phase": "Running", "containerStatuses": [{"ready": True, **cs}]}}


def test_worst_pod_names_the_reason():
    ok = pod("a", state={"running": {}})
    crash = pod("b", ready=False, state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                restartCount=5)
    pull = pod("c", ready=False, state={"waiting": {"reason": "ImagePullBackOff"}})
    assert pod_state(ok).reason == "Running" and not pod_state(ok).fatal
    w = worst_pod([ok, pull, crash])
    assert (w.pod, w.reason, w.restarts, w.fatal) == ("b", "CrashLoopBackOff", 5, True)
    unsched = {"metadata": {"name": "d"}, "spec": {"containers": [{}]}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}]}}
    assert worst_pod([ok, unsched]).reason == "Unschedulable"
    assert worst_pod([]) is None


def test_restorable_drops_server_fields():
    live = {"kind": "Deployment", "metadata": {"name": "x", "uid": "u", "resourceVersion": "9", "generation": 4,
                                               "managedFields": [], "annotations": {
                                                   "deployment.kubernetes.io/revision": "3", m.REVISION: "2"}},
            "spec": {"replicas": 1}, "status": {"replicas": 1}}
    r = m.restorable(live)
    assert r == {"kind": "Deployment", "metadata": {"name": "x", "annotations": {m.REVISION: "2"}},
                 "spec": {"replicas": 1}}
