"""Kubernetes use cases: render a team's manifests (for `deploy --render` / GitOps), the cluster's
health checks. The target itself is built by the composition root (bootstrap, as `app.target`); the
rest of the wiring is in deploy/app.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from elfctl.domain import k8s_manifests as m
from elfctl.domain.health import Check
from elfctl.domain.names import is_dns_label
from elfctl.domain.team import TeamSpec
from elfctl.errors import InputError


def kubernetes_namespace(cfg) -> str:
    """One namespace per environment: kubernetes.namespace, else elfctl-<profile>, else elfctl."""
    ns = cfg.get("kubernetes.namespace") or (f"elfctl-{cfg.profile}" if cfg.profile else "elfctl")
    if not is_dns_label(ns):
        raise InputError(f"kubernetes.namespace {ns!r} (from {cfg.source('kubernetes.namespace')}) is not a "
                         f"DNS-1123 label", hint="set kubernetes.namespace to lower case letters, digits and '-'")
    return ns


def render_manifests(spec: TeamSpec, image: str, revision: int = 0, namespace: str = "elfctl",
                     env: dict[str, str] | None = None, pull_secret: str | None = None,
                     version: str | None = None, gateway_key: bool = False) -> str:
    """The team's ConfigMap, Service and Deployment as YAML, validated against the official schema
    of `version` (newest shipped when None). Secrets appear by name only; no cluster is touched."""
    from elfctl.adapters.k8s_schema import validate

    objects = m.team_objects(spec, namespace, image, revision, env, pull_secret, gateway_key)
    validate(objects, version)
    return m.to_yaml(objects)


@dataclass
class Rendered:
    team: str
    image: str
    namespace: str
    schema_version: str
    yaml: str
    secrets_by_name: list[str] = field(default_factory=list)


def render_team(spec: TeamSpec, image: str, namespace: str, pull_secret: str | None,
                version: str | None, revision: int = 0, gateway_url: str = "") -> Rendered:
    """`elfctl k8s render TEAM`: the manifests of one team, with the schema version they were
    checked against. A team on the LLM gateway gets its URL in the ConfigMap and its key by
    reference to the revision's Secret (made by deploy, never rendered)."""
    from elfctl.adapters.k8s_schema import schema_version

    gateway = bool(gateway_url) and spec.llm.gateway
    text = render_manifests(spec, image, revision, namespace, {m.GATEWAY_ENV[0]: gateway_url} if gateway else None,
                            pull_secret=pull_secret, version=version, gateway_key=gateway)
    by_name = list(spec.secrets) + ([m.GATEWAY_KEY] if gateway else [])
    return Rendered(spec.name, image, namespace, schema_version(version), text, by_name)


def cluster_probe(target):
    """Health: API reachable, its version, the environment's namespace present."""

    def probe() -> Check:
        info = target.cluster_status()
        if not info["namespace_present"]:
            return Check("kubernetes", "fail", info["version"], "version",
                         output=f"{info['host']}: namespace {info['namespace']} missing",
                         hint="run `elfctl infra up`")
        return Check("kubernetes", "pass", info["version"], "version",
                     output=f"{info['host']}, namespace {info['namespace']}")

    return probe


def team_probe(target, team: str):
    """Health of one team's rollout: desired vs ready replicas and the worst pod state."""

    def probe() -> Check:
        s = target.team_status(team)
        if not s.exists:
            return Check(f"team:{team}", "warn", output=f"not deployed: no Deployment {team} in {target.namespace}",
                         hint=f"run `elfctl deploy {team}`")
        out = f"{s.ready}/{s.desired} ready, revision {s.revision or '?'}, {s.image}"
        hint = None
        if s.worst is not None and s.worst.reason not in ("Running",):
            out += f"; worst pod {s.worst.pod}: {s.worst.reason}" + (f" ({s.worst.message})" if s.worst.message else "")
            hint = {"CrashLoopBackOff": f"the container keeps exiting: `elfctl logs {team}`",
                    "ImagePullBackOff": "the node cannot pull the image: check the registry and the pull secret",
                    "ErrImagePull": "the node cannot pull the image: check the registry and the pull secret",
                    }.get(s.worst.reason, "see `kubectl describe pod`")
        return Check(f"team:{team}", s.status, s.ready, "ready_replicas", output=out, hint=hint)

    return probe


def health_probes(target, teams: list[str]) -> dict:
    """The cluster and each team."""
    return {"kubernetes": cluster_probe(target), **{f"team:{t}": team_probe(target, t) for t in teams}}


def pinned_image(registry, repo: str, tag: str, warn) -> str:
    """repo:tag pinned by the digest the registry holds; by tag alone (and a warning) when the
    registry does not hold it or does not answer."""
    from elfctl.errors import ElfError

    try:
        digest = registry.digest(repo, tag)
    except ElfError as exc:
        warn(f"image not pinned: registry {registry.address}: {exc.message}")
        digest = None
    if digest is None:
        warn(f"{repo}:{tag} is not in the registry yet: the image is referenced by tag, not digest")
    return m.pin_image(f"{repo}:{tag}", digest)
