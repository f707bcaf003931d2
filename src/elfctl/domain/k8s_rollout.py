"""Reading a Deployment and its pods the way `kubectl rollout status` does. Pure functions on the
API's JSON (dicts), no client."""

from __future__ import annotations

from dataclasses import dataclass, field

# Waiting reasons that will not fix themselves: a rollout with such a pod fails at once instead
# of waiting for its progress deadline.
FATAL_WAITING = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                 "CreateContainerConfigError", "CreateContainerError")
# The worse a pod state, the higher its rank (health shows the worst one with its reason).
RANK = {"CrashLoopBackOff": 90, "ImagePullBackOff": 88, "ErrImagePull": 87, "InvalidImageName": 86,
        "CreateContainerConfigError": 85, "CreateContainerError": 84, "OOMKilled": 80, "Error": 75,
        "Unschedulable": 70, "ContainerCreating": 30, "NotReady": 40, "Pending": 20, "Running": 0}


@dataclass
class RolloutState:
    done: bool
    failed: bool
    message: str


def rollout_state(dep: dict) -> RolloutState:
    """kubectl's DeploymentStatusViewer: observedGeneration first, then the progress deadline,
    then updated, old, and available replicas."""
    meta, spec, status = dep.get("metadata", {}), dep.get("spec", {}), dep.get("status") or {}
    name = meta.get("name", "?")
    generation = meta.get("generation") or 0
    if generation > (status.get("observedGeneration") or 0):
        return RolloutState(False, False, "waiting for the deployment spec update to be observed")
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return RolloutState(False, True, f"deployment {name!r} exceeded its progress deadline "
                                             f"({spec.get('progressDeadlineSeconds', 600)}s): {cond.get('message', '')}")
    want = spec.get("replicas", 1)
    updated = status.get("updatedReplicas") or 0
    total = status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    ready = status.get("readyReplicas") or 0
    if updated < want:
        return RolloutState(False, False, f"{updated} of {want} new replicas updated")
    if total > updated:
        return RolloutState(False, False, f"{total - updated} old replicas pending termination")
    if available < updated or ready < updated:
        return RolloutState(False, False, f"{min(available, ready)} of {updated} updated replicas available")
    return RolloutState(True, False, f"{ready}/{want} replicas ready")


@dataclass
class PodState:
    pod: str
    reason: str  # Running, CrashLoopBackOff, ImagePullBackOff, Unschedulable, NotReady, ...
    message: str = ""
    restarts: int = 0
    image: str = ""

    @property
    def rank(self) -> int:
        return RANK.get(self.reason, 50)

    @property
    def fatal(self) -> bool:
        return self.reason in FATAL_WAITING


def pod_state(pod: dict) -> PodState:
    """The single worst thing about one pod."""
    name = pod.get("metadata", {}).get("name", "?")
    containers = pod.get("spec", {}).get("containers") or [{}]
    image = containers[0].get("image", "")
    status = pod.get("status") or {}
    worst = PodState(name, status.get("phase") or "Pending", image=image)
    for cs in status.get("containerStatuses") or []:
        restarts = cs.get("restartCount") or 0
        state = cs.get("state") or {}
        last = cs.get("lastState") or {}
        cand = None
        if "waiting" in state:
            w = state["waiting"] or {}
            cand = PodState(name, w.get("reason") or "Waiting", w.get("message", ""), restarts, image)
        elif "terminated" in state or "terminated" in last:
            t = state.get("terminated") or last.get("terminated") or {}
            if t.get("exitCode", 0) != 0:
                cand = PodState(name, t.get("reason") or "Error", f"exit code {t.get('exitCode')}", restarts, image)
        elif not cs.get("ready"):
            cand = PodState(name, "NotReady", "container not ready", restarts, image)
        if cand and cand.rank > worst.rank:
            worst = cand
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            cand = PodState(name, cond.get("reason") or "Unschedulable", cond.get("message", ""), 0, image)
            if cand.rank > worst.rank:
                worst = cand
    return worst


def worst_pod(pods: list[dict]) -> PodState | None:
    states = [pod_state(p) for p in pods]
    return max(states, key=lambda s: s.rank, default=None)


@dataclass
class TeamStatus:
    """What `elfctl health` shows for one team on the cluster."""

    team: str
    exists: bool
    desired: int = 0
    ready: int = 0
    updated: int = 0
    available: int = 0
    image: str = ""
    revision: str = ""
    worst: PodState | None = None
    rollout: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        if not self.exists:
            return "fail"
        if self.worst is not None and self.worst.fatal:
            return "fail"
        if self.desired and self.ready == 0:
            return "fail"
        if self.ready < self.desired:
            return "warn"
        return "pass"
