"""Kubernetes as a DeployTarget (ports.py): the deploy service's lock, state machine and history
stay the same; this module knows how to put one image of a team into service on a cluster.

rollout(): render ConfigMap/Service/Deployment, validate them against the cluster version's
official schema, apply only what changed (server-side apply, field manager "elfctl"), wait as
`kubectl rollout status` does, and when the new version fails re-apply the previous objects
and wait for them, so the old version keeps serving. Secret VALUES only ever travel to the API in
a Secret object; they are never rendered, logged or returned.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from elfctl.adapters.kubernetes import KubeCluster
from elfctl.domain import k8s_manifests as m
from elfctl.domain.k8s_rollout import RolloutState, TeamStatus, pod_state, rollout_state, worst_pod
from elfctl.domain.mcp_server_json import CONFIG_ENV, CONFIG_FILE
from elfctl.domain.rollout import RolloutReport
from elfctl.domain.team import TeamSpec
from elfctl.errors import ElfError, InputError, OperationFailed
from elfctl.redact import plain, register_secret, scrub


def _no_secret_source(spec: TeamSpec) -> dict[str, str]:
    raise InputError(f"{spec.path}: secrets: no source of secret values was given to the Kubernetes target",
                     hint="build the target through elfctl.bootstrap.kubernetes_target (app.target)")


class KubernetesTarget:
    name = "kubernetes"
    pins_digest = True  # the deploy service hands rollout() `repo:tag@sha256:...` when it knows the digest
    needs_local_image = False  # nodes pull from the registry; the build machine's copy is irrelevant
    _phase: Callable[[str], None] | None = None

    def __init__(self, cluster: KubeCluster, namespace: str, environment: str = "default",
                 teams: Callable[[], list[TeamSpec]] = list, registry: str = "",
                 pull_secret: str = "elfctl-registry", poll_s: float = 1.0, restore_timeout_s: float = 120.0,
                 progress: Callable[[str], None] | None = None,
                 secret_values: Callable[[TeamSpec], dict[str, str]] = _no_secret_source,
                 pull_auth: tuple[str, str] | None = None):
        self.cluster = cluster
        self.namespace = namespace
        self.environment = environment
        self.team_specs = teams  # the TeamSpecs of teams/ (their Secrets are made by prepare)
        self.registry = registry
        self.pull_secret = pull_secret
        self.poll_s = poll_s
        self.restore_timeout_s = restore_timeout_s
        self.progress = progress or (lambda _msg: None)
        # Team secret values by name: the composition hands in the project's one source of them
        # (services/deploy/app.resolve_secrets: the credential store, then the environment).
        self.secret_values = secret_values
        self.pull_auth = pull_auth  # (user, password) for the image-pull secret, or None
        self._version: str | None = None

    # --- cluster --------------------------------------------------------------------------
    def server_version(self) -> str:
        if self._version is None:
            self._version = self.cluster.version()
        return self._version

    def render(self, spec: TeamSpec, image: str, revision: int, env: dict[str, str] | None = None,
               gateway_key: bool = False) -> list[dict]:
        return m.team_objects(spec, self.namespace, image, revision, env,
                              self.pull_secret if self.registry else None, gateway_key)

    def validate(self, objects: list[dict]) -> str:
        from elfctl.adapters.k8s_schema import validate

        return validate(objects, self.server_version())

    # --- infra up ---------------------------------------------------------------------------
    def plan(self) -> list[str]:
        """What prepare() makes sure of, by name only (for --dry-run)."""
        lines = [f"namespace {self.namespace} (environment {self.environment}, managed-by elfctl)"]
        if self.registry:
            lines.append(f"image-pull secret {self.pull_secret} for registry {self.registry}")
        for spec in self.team_specs():
            if spec.secrets:
                lines.append(f"Secret {m.secret_name(spec.name)} with keys {', '.join(spec.secrets)} "
                             f"(values from the credential store or the environment, not shown)")
        return lines

    def prepare(self) -> tuple[bool, str]:
        changes = []
        if self._ensure_namespace():
            changes.append(f"namespace {self.namespace} created")
        if self.registry and self._ensure_secret(self.pull_secret, None, self._pull_config(),
                                                 "kubernetes.io/dockerconfigjson")[0]:
            changes.append(f"pull secret {self.pull_secret} written")
        for spec in self.team_specs():
            if spec.secrets and self._ensure_secret(m.secret_name(spec.name), spec.name,
                                                    self._secret_values(spec))[0]:
                changes.append(f"Secret {m.secret_name(spec.name)} written")
        if changes:
            return True, "; ".join(changes)
        return False, f"namespace {self.namespace} and its secrets up to date"

    def _secret_values(self, spec: TeamSpec) -> dict[str, str]:
        """The team's values as plain str (the source hands out masked `Secret`s)."""
        return {k: plain(v) for k, v in self.secret_values(spec).items()}

    def _ensure_namespace(self) -> bool:
        if self.cluster.get("Namespace", self.namespace) is not None:
            return False
        self.cluster.apply(m.namespace_object(self.namespace, self.environment))
        return True

    def _pull_config(self) -> dict[str, str]:
        auth: dict[str, Any] = {}
        if self.pull_auth:
            user, pw = self.pull_auth
            register_secret(pw)
            auth = {"username": user, "password": pw,
                    "auth": base64.b64encode(f"{user}:{pw}".encode()).decode()}
        return {".dockerconfigjson": json.dumps({"auths": {self.registry: auth}}, sort_keys=True)}

    def ensure_secret(self, name: str, values: dict[str, str]) -> tuple[bool, str]:
        """A platform Secret (e.g. the gateway's): written only when its values changed; returns
        (written, the random id of its content) as for a team's."""
        return self._ensure_secret(name, None, values)

    def _ensure_secret(self, name: str, team: str | None, values: dict[str, str],
                       type_: str = "Opaque") -> tuple[bool, str]:
        """Write the Secret only when its values differ from the live ones (compared in memory).
        Returns (written, the id of its content): a fresh random id whenever the values change."""
        live = self.cluster.get("Secret", name, self.namespace)
        if live is not None:
            current = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (live.get("data") or {}).items()}
            current.update(live.get("stringData") or {})
            if current == values:
                return False, (live["metadata"].get("annotations") or {}).get(m.SECRET_ID, "")
        secret_id = uuid.uuid4().hex
        self.cluster.apply(m.secret_object(name, self.namespace, team, values, type_, secret_id))
        return True, secret_id

    # --- deploy -------------------------------------------------------------------------------
    def set_progress(self, callback: Callable[[str], None] | None) -> None:
        """Phases of rollout(): starting (applying), verifying (waiting), switched."""
        self._phase = callback

    def _report(self, phase: str) -> None:
        if self._phase is not None:
            self._phase(phase)

    def serving(self, team: str) -> str | None:
        """The serving image as the deploy service names it: `repo:tag`, digest dropped."""
        image = self._live_image(team)
        return m.DIGEST.sub("", image) if image else None

    def _live_image(self, team: str) -> str | None:
        dep = self.cluster.get("Deployment", team, self.namespace)
        return dep["spec"]["template"]["spec"]["containers"][0]["image"] if dep else None

    def teams(self) -> list[str]:
        """The teams elfctl runs in this namespace (for `infra down`)."""
        return sorted(d["metadata"]["name"] for d in self.cluster.list("Deployment", self.namespace, m.MANAGED_BY))

    def rollout(self, spec: TeamSpec, image: str, revision: int, env: dict[str, str], secrets: dict[str, Any],
                deadline_s: float, before_switch: Callable[[], None] | None = None) -> RolloutReport:
        """The cluster switches as it rolls out (new pods take traffic once ready), so before_switch
        runs before anything is written: when it raises, the cluster is untouched."""
        gateway_key = plain(secrets[m.GATEWAY_KEY]) if spec.llm.gateway and m.GATEWAY_KEY in (secrets or {}) else None
        if spec.mcp_servers and CONFIG_ENV not in (secrets or {}):  # the Deployment would mount a missing file
            raise InputError(f"{spec.path}: mcp_servers: no mcpServers document was given to the Kubernetes target",
                             hint=f"deploy it with `elfctl deploy {spec.name}`")
        objects = self.render(spec, image, revision, env, gateway_key is not None)
        self.validate(objects)
        warnings = [] if m.is_pinned(image) else [f"image {image} is not pinned by digest"]
        if before_switch is not None:
            before_switch()
        self._report("starting")
        self._ensure_namespace()
        ids = []
        if spec.secrets:
            values = {k: plain(v) for k, v in (secrets or {}).items() if k in spec.secrets}
            if set(values) != set(spec.secrets):
                values = self._secret_values(spec)
            ids.append(self._ensure_secret(m.secret_name(spec.name), spec.name, values)[1])
        if spec.mcp_servers:  # the mcpServers document, mounted read-only as a file by the Deployment
            ids.append(self._ensure_secret(m.mcp_secret_name(spec.name), spec.name,
                                           {CONFIG_FILE: plain(secrets[CONFIG_ENV])})[1])
        if ids:  # a changed value (either Secret) restarts the pods: they read files/env when they start
            objects = [m.with_secret_id(o, ",".join(filter(None, ids))) if o["kind"] == "Deployment" else o
                       for o in objects]
        if gateway_key is not None:
            self.cluster.apply(m.gateway_secret(spec.name, self.namespace, revision, gateway_key))
        live = {o["kind"]: self.cluster.get(o["kind"], o["metadata"]["name"], self.namespace) for o in objects}
        wrote = [self._apply_changed(o, live[o["kind"]]) for o in objects]
        prev = live["Deployment"]
        if not any(wrote) and prev is not None and rollout_state(prev).done:
            return RolloutReport(True, f"unchanged: {image} already serves "
                                     f"({rollout_state(prev).message})", warnings=warnings, changed=False)
        self._report("verifying")
        state = self._wait(spec.name, image, deadline_s)
        if state.done:
            self._report("switched")
            warnings += self._drop_gateway_keys(spec.name, keep=revision)  # the replaced pods are gone
            return RolloutReport(True, f"rolled out {image}: {state.message}", warnings=warnings)
        logs = self._failure_logs(spec.name, image)
        reason = f"rollout of {image} failed: {state.message}"
        if prev is not None:
            reason += "; " + self._restore(spec.name, live)
        elif prev is None:
            for kind in ("Deployment", "Service", "ConfigMap"):  # a first deploy leaves nothing behind
                self.cluster.delete(kind, m.env_name(spec.name) if kind == "ConfigMap" else spec.name, self.namespace)
            reason += "; removed it (no previous version to keep)"
        if gateway_key is not None:
            warnings += self._drop_gateway_keys(spec.name, only=revision)
        return RolloutReport(False, scrub(reason), scrub(logs), warnings)

    def _drop_gateway_keys(self, team: str, keep: int | None = None, only: int | None = None) -> list[str]:
        """Delete the team's gateway-key Secrets but the `keep` revision's (or `only` that one's):
        pods that still run resolved theirs when they started; a restarting one of a retired
        revision must not. After a rollout a refusing API is a warning (the Secrets are named),
        never an error: what serves has been decided, and its key is revoked by the store anyway."""
        try:
            if only is not None:
                self.cluster.delete("Secret", m.gateway_secret_name(team, only), self.namespace)
                return []
            for obj in self.cluster.list("Secret", self.namespace, {**m.selector(team), **m.GATEWAY_ROLE}):
                name = obj["metadata"]["name"]
                if keep is None or name != m.gateway_secret_name(team, keep):
                    self.cluster.delete("Secret", name, self.namespace)
        except ElfError as exc:
            return [f"gateway-key Secrets of {team} not deleted ({exc.message}); `elfctl team rm {team}` or "
                    f"the next deploy deletes them"]
        return []

    def _apply_changed(self, obj: dict, live: dict | None) -> bool:
        want = obj["metadata"]["annotations"][m.HASH]
        if live is not None and (live.get("metadata", {}).get("annotations") or {}).get(m.HASH) == want:
            return False
        self.cluster.apply(obj)
        return True

    def _restore(self, team: str, live: dict[str, dict | None]) -> str:
        prev = live["Deployment"]
        old_image = prev["spec"]["template"]["spec"]["containers"][0]["image"]
        old_rev = (prev["metadata"].get("annotations") or {}).get(m.REVISION, "?")
        self.progress(f"restoring revision {old_rev} ({old_image})")
        for kind in ("ConfigMap", "Deployment"):
            if live.get(kind) is not None:
                self.cluster.apply(m.restorable(live[kind]))
        state = self._wait(team, old_image, self.restore_timeout_s)
        if state.done:
            return f"restored revision {old_rev} ({old_image}): {state.message}"
        return f"restoring revision {old_rev} ({old_image}) also failed: {state.message}"

    def pods(self, team: str) -> list[dict]:
        """The team's pods as the API returns them (the resource monitor reads their states)."""
        return self._pods(team)

    def _pods(self, team: str, image: str | None = None) -> list[dict]:
        pods = self.cluster.list("Pod", self.namespace, m.selector(team))
        return [p for p in pods if image is None or pod_state(p).image == image]

    def _wait(self, team: str, image: str, deadline_s: float) -> RolloutState:
        end = time.monotonic() + deadline_s
        last = ""
        while True:
            dep = self.cluster.get("Deployment", team, self.namespace)
            if dep is None:
                return RolloutState(False, True, f"deployment {team!r} disappeared")
            state = rollout_state(dep)
            if state.done or state.failed:
                return state
            bad = [s for s in map(pod_state, self._pods(team, image)) if s.fatal]
            if bad:
                return RolloutState(False, True, f"pod {bad[0].pod}: {bad[0].reason}"
                                                 + (f": {bad[0].message}" if bad[0].message else ""))
            if time.monotonic() >= end:
                return RolloutState(False, True, f"not rolled out within {deadline_s:g}s ({state.message})")
            if state.message != last:
                self.progress(f"{team}: {state.message}")
                last = state.message
            time.sleep(self.poll_s)

    def _failure_logs(self, team: str, image: str, tail: int = 50) -> str:
        states = [pod_state(p) for p in self._pods(team, image)]
        if not states:
            return ""
        worst = max(states, key=lambda s: s.rank)
        lines = self.cluster.pod_log(worst.pod, self.namespace, m.CONTAINER, tail,
                                     previous=worst.reason == "CrashLoopBackOff")
        return "\n".join(lines)

    # --- the rest of the port -----------------------------------------------------------------
    def stop(self, team: str) -> bool:
        running = self.cluster.delete("Deployment", team, self.namespace)
        self.cluster.delete("Service", team, self.namespace)
        self.cluster.delete("ConfigMap", m.env_name(team), self.namespace)
        self.cluster.delete("Secret", m.mcp_secret_name(team), self.namespace)  # written by each rollout
        for warning in self._drop_gateway_keys(team):
            self.progress(warning)
        return running

    def logs(self, team: str, tail: int = 100, follow: bool = False) -> Iterator[str]:
        image = self._live_image(team)
        pods = self._pods(team, image) if image else []
        if follow and pods:
            return self.cluster.pod_log(pods[0]["metadata"]["name"], self.namespace, m.CONTAINER, tail, follow=True)

        def lines():
            for pod in pods:
                name = pod["metadata"]["name"]
                for line in self.cluster.pod_log(name, self.namespace, m.CONTAINER, tail):
                    yield scrub(f"[{name}] {line}" if len(pods) > 1 else line)
        return lines()

    def scale(self, team: str, replicas: int) -> int:
        """The Deployment's spec.replicas, set by a merge patch (the cluster adds or removes pods)."""
        if replicas < 1:
            raise InputError(f"replicas {replicas}: a team runs at least 1 replica", hint="use 1 or more")
        dep = self.cluster.get("Deployment", team, self.namespace)
        if dep is None:
            raise OperationFailed(f"team {team} is not running: no Deployment {team} in namespace "
                                  f"{self.namespace}", hint=f"deploy it first: `elfctl deploy {team}`")
        before = dep["spec"].get("replicas", 1)
        if before != replicas:
            self.cluster.patch("Deployment", team, self.namespace, {"spec": {"replicas": replicas}})
        return before

    def host_port(self, team: str) -> int | None:
        """None: a cluster publishes a team through its Service, not a port on this machine."""
        return None

    def endpoint_health(self, team: str, path: str, timeout: float = 2.0,
                        endpoints: list[str] | None = None) -> None:
        """None: the kubelet's readiness probe on `health.path` already decides which pods serve
        (status() reports them); this machine may not even reach pod addresses."""
        return None

    def team_status(self, team: str) -> TeamStatus:
        dep = self.cluster.get("Deployment", team, self.namespace)
        if dep is None:
            return TeamStatus(team, False)
        st = dep.get("status") or {}
        return TeamStatus(team, True, desired=dep["spec"].get("replicas", 1), ready=st.get("readyReplicas") or 0,
                          updated=st.get("updatedReplicas") or 0, available=st.get("availableReplicas") or 0,
                          image=dep["spec"]["template"]["spec"]["containers"][0]["image"],
                          revision=(dep["metadata"].get("annotations") or {}).get(m.REVISION, ""),
                          worst=worst_pod(self._pods(team)), rollout=rollout_state(dep).message)

    def status(self, team: str) -> dict[str, Any]:
        from dataclasses import asdict

        s = self.team_status(team)
        reason = s.rollout if s.exists else f"no Deployment {team} in namespace {self.namespace}"
        if s.worst is not None and s.worst.reason != "Running":
            reason += f"; worst pod {s.worst.pod}: {s.worst.reason}"
        return {**asdict(s), "status": s.status, "reason": reason, "host_port": None}

    def cluster_status(self) -> dict[str, Any]:
        """Reachable (else Unreachable raised), version, namespace present."""
        version = self.server_version()
        ns = self.cluster.get("Namespace", self.namespace) is not None
        return {"host": self.cluster.host, "version": version, "namespace": self.namespace, "namespace_present": ns}
