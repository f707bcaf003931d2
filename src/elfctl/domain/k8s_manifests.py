"""A team's Kubernetes objects, rendered from its TeamSpec. Pure data: no client, no I/O.

What a user (or a GitOps tool) gets: a ConfigMap with the team's plain env, a Service, and a
Deployment whose container takes the env from the ConfigMap and each secret by NAME from the
team's Secret (values never appear here), with startup/readiness/liveness probes on the team's
health path, resources, replicas, and the image pinned by digest when one is known.

Every object carries `app.kubernetes.io/managed-by: elfctl` and the team, so elfctl finds what it
manages, and an `elfctl.dev/applied-hash` annotation over its content (revision excluded), so an
unchanged redeploy is recognised without writing anything.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from typing import Any

from elfctl.domain.mcp_server_json import CONFIG_ENV, CONFIG_FILE
from elfctl.domain.team import GATEWAY_ENV, SECRETS_DIR, TeamSpec

MANAGED_BY = {"app.kubernetes.io/managed-by": "elfctl"}
TEAM_LABEL = "elfctl.dev/team"
REVISION = "elfctl.dev/revision"
HASH = "elfctl.dev/applied-hash"
ENV_HASH = "elfctl.dev/env-hash"
SECRET_ID = "elfctl.dev/secret-id"  # random per write of a Secret's values: never derived from them
CONTAINER = "team"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# Server-set fields dropped before an object is re-applied (restore of the previous revision).
SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")
SERVER_ANNOTATIONS = ("deployment.kubernetes.io/revision", "kubectl.kubernetes.io/last-applied-configuration")


def secret_name(team: str) -> str:
    return f"{team}-secrets"


def env_name(team: str) -> str:
    return f"{team}-env"


def mcp_secret_name(team: str) -> str:
    """The team's mcpServers document (it may hold secret header/env values): its own Secret."""
    return f"{team}-mcp"


GATEWAY_KEY = GATEWAY_ENV[1]  # OPENAI_API_KEY: the revision's LLM gateway key
GATEWAY_ROLE = {"elfctl.dev/role": "gateway-key"}


def gateway_secret_name(team: str, revision: int) -> str:
    """One Secret per revision: the replicas of each revision keep their own key until retired."""
    return f"{team}-gateway-r{revision}"


def team_labels(team: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": team, TEAM_LABEL: team, **MANAGED_BY}


def selector(team: str) -> dict[str, str]:
    """The Deployment/Service selector: stable labels only (a selector is immutable)."""
    return {"app.kubernetes.io/name": team, **MANAGED_BY}


def label_selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def pin_image(image: str, digest: str | None = None) -> str:
    """`repo:tag` + `sha256:...` -> `repo:tag@sha256:...`: a node pulls exactly what was tested."""
    if digest and not DIGEST.search(image):
        return f"{image}@{digest}"
    return image


def is_pinned(image: str) -> bool:
    return bool(DIGEST.search(image))


def content_hash(obj: dict) -> str:
    """SHA-256 over the object's canonical JSON, without the hash and revision markers."""
    clean = copy.deepcopy(obj)
    meta = clean.get("metadata", {})
    meta.get("annotations", {}).pop(HASH, None)
    meta.get("annotations", {}).pop(REVISION, None)
    meta.get("labels", {}).pop(REVISION, None)
    return hashlib.sha256(json.dumps(clean, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def _stamp(obj: dict) -> dict:
    obj["metadata"].setdefault("annotations", {})[HASH] = content_hash(obj)
    return obj


def _meta(name: str, namespace: str, team: str, revision: int | None = None) -> dict:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": team_labels(team)}
    if revision is not None:
        meta["labels"][REVISION] = str(revision)
        meta["annotations"] = {REVISION: str(revision)}
    return meta


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


def probes(spec: TeamSpec) -> dict[str, dict]:
    """Kubernetes probes from the team's health gate. A startup probe covers the start budget, so
    the liveness probe never kills a slow starter; readiness gates traffic like the Docker gate."""
    h = spec.health

    def get() -> dict:  # a fresh dict per probe: shared ones become YAML anchors in --render
        return {"httpGet": {"path": h.path, "port": "http"}}

    period, timeout = _seconds(h.period_s), _seconds(h.timeout_s)
    return {
        "startupProbe": {**get(), "periodSeconds": period, "timeoutSeconds": timeout,
                         "failureThreshold": max(1, math.ceil(h.start_timeout_s / period))},
        "readinessProbe": {**get(), "periodSeconds": period, "timeoutSeconds": timeout,
                           "successThreshold": h.success_threshold, "failureThreshold": h.failure_threshold},
        "livenessProbe": {**get(), "periodSeconds": period, "timeoutSeconds": timeout,
                          "failureThreshold": h.failure_threshold},
    }


def resources(spec: TeamSpec) -> dict:
    req = {k: v for k, v in (("cpu", spec.resources.cpu), ("memory", spec.resources.memory)) if v}
    if not req:
        return {}
    out: dict[str, Any] = {"requests": req}
    if spec.resources.memory:  # memory is not compressible: cap it; CPU is left burstable on purpose
        out["limits"] = {"memory": spec.resources.memory}
    return out


def config_map(spec: TeamSpec, namespace: str, env: dict[str, str] | None = None) -> dict:
    data = {**spec.env, **(env or {})}
    return _stamp({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": _meta(env_name(spec.name), namespace, spec.name), "data": dict(sorted(data.items()))})


def service(spec: TeamSpec, namespace: str) -> dict:
    return _stamp({"apiVersion": "v1", "kind": "Service", "metadata": _meta(spec.name, namespace, spec.name),
                   "spec": {"type": "ClusterIP", "selector": selector(spec.name),
                            "ports": [{"name": "http", "port": spec.port, "targetPort": "http",
                                       "protocol": "TCP"}]}})


def deployment(spec: TeamSpec, namespace: str, image: str, revision: int, env_hash: str,
               pull_secret: str | None = None, gateway_key: bool = False) -> dict:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": spec.port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": env_name(spec.name)}}],
        **probes(spec),
    }
    pod: dict[str, Any] = {"containers": [container]}
    files = spec.secret_files()
    if files:  # the team's Secret as read-only files (tmpfs on the node); their paths in NAME_FILE
        container["env"] = [{"name": f"{s}_FILE", "value": path} for s, path in files.items()]
        container["volumeMounts"] = [{"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True}]
        pod["volumes"] = [{"name": "secrets", "secret": {
            "secretName": secret_name(spec.name), "defaultMode": 0o444,
            "items": [{"key": s, "path": s} for s in spec.secrets]}}]
    elif spec.secrets:  # by name only: the values live in the team's Secret
        container["env"] = [{"name": s, "valueFrom": {"secretKeyRef": {"name": secret_name(spec.name), "key": s}}}
                            for s in spec.secrets]
    if spec.mcp_servers:  # same path as on Docker: one read-only file (subPath: beside the team's folder)
        container.setdefault("env", []).append({"name": CONFIG_ENV, "value": f"{SECRETS_DIR}/{CONFIG_FILE}"})
        container.setdefault("volumeMounts", []).append({"name": "mcp", "mountPath": f"{SECRETS_DIR}/{CONFIG_FILE}",
                                                         "subPath": CONFIG_FILE, "readOnly": True})
        pod.setdefault("volumes", []).append({"name": "mcp", "secret": {
            "secretName": mcp_secret_name(spec.name), "defaultMode": 0o444,
            "items": [{"key": CONFIG_FILE, "path": CONFIG_FILE}]}})
    if gateway_key:  # by reference: the key lives in the revision's own Secret, never in the Pod spec
        container.setdefault("env", []).append({"name": GATEWAY_KEY, "valueFrom": {"secretKeyRef": {
            "name": gateway_secret_name(spec.name, revision), "key": GATEWAY_KEY}}})
    if resources(spec):
        container["resources"] = resources(spec)
    if pull_secret:
        pod["imagePullSecrets"] = [{"name": pull_secret}]
    deadline = max(30, math.ceil(spec.health.start_timeout_s))
    return _stamp({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta(spec.name, namespace, spec.name, revision),
        "spec": {
            "replicas": spec.replicas,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": deadline,
            "selector": {"matchLabels": selector(spec.name)},
            # Zero downtime: a new pod must be ready before an old one goes.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                # The env hash rolls the pods when only the ConfigMap changed.
                "metadata": {"labels": team_labels(spec.name), "annotations": {ENV_HASH: env_hash}},
                "spec": pod,
            },
        },
    })


def with_secret_id(deployment: dict, secret_id: str) -> dict:
    """The Deployment carrying its Secret's content id on the pod template, so the pods restart when
    a rotation rewrote the Secret (a container reads its environment only when it starts)."""
    if not secret_id:
        return deployment
    dep = copy.deepcopy(deployment)
    dep["spec"]["template"]["metadata"]["annotations"][SECRET_ID] = secret_id
    return _stamp(dep)


def team_objects(spec: TeamSpec, namespace: str, image: str, revision: int, env: dict[str, str] | None = None,
                 pull_secret: str | None = None, gateway_key: bool = False) -> list[dict]:
    """ConfigMap, Service, Deployment: in apply order (the Deployment refers to the ConfigMap)."""
    cm = config_map(spec, namespace, env)
    return [cm, service(spec, namespace),
            deployment(spec, namespace, image, revision, cm["metadata"]["annotations"][HASH], pull_secret,
                       gateway_key)]


def namespace_object(namespace: str, environment: str) -> dict:
    return _stamp({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": namespace, "labels": {**MANAGED_BY, "elfctl.dev/environment": environment}}})


def secret_object(name: str, namespace: str, team: str | None, string_data: dict[str, str],
                  type_: str = "Opaque", secret_id: str = "") -> dict:
    """A Secret carrying values: built only to be sent to the API, never rendered or logged."""
    labels = team_labels(team) if team else dict(MANAGED_BY)
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if secret_id:
        meta["annotations"] = {SECRET_ID: secret_id}
    return {"apiVersion": "v1", "kind": "Secret", "type": type_, "metadata": meta, "stringData": string_data}


def gateway_secret(team: str, namespace: str, revision: int, key: str) -> dict:
    """The revision's gateway key as a Secret: built only to be sent to the API, never rendered."""
    obj = secret_object(gateway_secret_name(team, revision), namespace, team, {GATEWAY_KEY: key})
    obj["metadata"]["labels"].update(GATEWAY_ROLE)
    return obj


def restorable(live: dict) -> dict:
    """A live object as it can be re-applied: server-set metadata and status dropped."""
    obj = copy.deepcopy(live)
    obj.pop("status", None)
    meta = obj.get("metadata", {})
    for key in SERVER_FIELDS:
        meta.pop(key, None)
    for key in SERVER_ANNOTATIONS:
        meta.get("annotations", {}).pop(key, None)
    return obj


def to_yaml(objects: list[dict]) -> str:
    import yaml

    return "".join("---\n" + yaml.safe_dump(o, sort_keys=False, default_flow_style=False) for o in objects)
