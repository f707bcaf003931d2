"""k8s_pod: each team's pods on the cluster: ready against desired, restarts, OOMKilled, Pending.
The share is the part of the desired replicas not ready; a crash-looping or OOM-killed pod is
critical whatever the share (it will not fix itself)."""

from __future__ import annotations

from elfctl.domain.k8s_rollout import pod_state
from elfctl.services.resources.status import Reading, reading

STUCK = ("CrashLoopBackOff", "OOMKilled", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError")


def _oom(pod: dict) -> bool:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        for key in ("state", "lastState"):
            if ((cs.get(key) or {}).get("terminated") or {}).get("reason") == "OOMKilled":
                return True
    return False


def k8s_pods(limits: tuple[float, float], target) -> list[Reading]:
    out = []
    for team in target.teams():
        st = target.team_status(team)
        pods = target.pods(team)
        states = [pod_state(p) for p in pods]
        restarts = sum(s.restarts for s in states)
        oom = sum(1 for p in pods if _oom(p))
        pending = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Pending")
        stuck = [s for s in states if s.reason in STUCK]
        desired = st.desired or 0
        missing = (desired - min(st.ready, desired)) / desired * 100 if desired else 0.0
        detail = (f"{st.ready}/{desired} ready, {restarts} restart(s), {oom} OOMKilled, {pending} Pending"
                  + (f"; {stuck[0].pod}: {stuck[0].reason}" if stuck else ""))
        r = reading("k8s_pod", f"team:{team}", missing, limits, detail, team=team)
        if (stuck or oom) and r.status not in ("critical", "exhausted"):
            r.status = "critical"
        elif pending and r.status == "healthy":
            r.status = "warning"
        out.append(r)
    return out
