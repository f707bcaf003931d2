"""What a deployed team gets of the LLM gateway: OPENAI_BASE_URL (the gateway by its name on the
platform's network) and OPENAI_API_KEY (a key minted for the deploy's revision), so any
OpenAI-compatible client in the team is costed and budgeted without a code change, and no provider
key enters the team's containers.

A revision's key lives as long as its replicas: minted when the deploy starts one, revoked when
a later revision replaced it (`retire`, after the switch) or when it never served (`revoke`, after
a failed deploy or rollback). `team rm` revokes every key of the team (`revoke_team`). The key is a
masked `Secret` (redacted from every output and log) and goes to the target beside the team's own
secrets: never into the deployment history, which records only its prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from elfctl.domain.secret import Secret
from elfctl.domain.team import GATEWAY_ENV

BASE_URL, API_KEY = GATEWAY_ENV
# The name teams reach the gateway by: its network alias on Docker (`infra up` runs the container as
# <deploy.prefix>-gateway with this alias), its Deployment and Service on Kubernetes.
NAME = "elfctl-gateway"


def docker_name(prefix: str = "elfctl") -> str:
    """The gateway's container on the platform's Docker network."""
    return f"{prefix}-gateway"


def team_url(target: str, port: int, namespace: str = "elfctl", override: str = "") -> str:
    """The gateway's OpenAI base URL as a team's replicas reach it: by its alias on the Docker
    network, by its Service's cluster DNS name on Kubernetes; `override` (gateway.url_in_teams)
    when set."""
    if override:
        return override.rstrip("/")
    if target == "kubernetes":
        return f"http://{NAME}.{namespace}.svc:{port}/v1"
    return f"http://{NAME}:{port}/v1"


@dataclass
class Injected:
    """The gateway's part of one revision's environment."""

    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, Secret] = field(default_factory=dict)
    prefix: str | None = None  # of the key minted (None: nothing minted)

    def record(self) -> dict:
        """What the deployment history keeps: the URL and the key's prefix (its public name)."""
        return {"gateway": {"url": self.env[BASE_URL], "key_prefix": self.prefix}} if self.prefix else {}


def url_for(spec, url: str) -> str:
    """The gateway URL the team's replicas get ('' when none). Part of the deploy's config key, so
    turning the gateway on or off, or moving it, rolls the team out again."""
    return url if spec.llm.gateway else ""


def inject(store, spec, revision: int, url: str) -> Injected:
    """Mint the revision's key and say what to inject; nothing for a team that opted out
    (`llm.gateway: false`) or a deploy with no gateway URL (flow-level callers)."""
    if not url_for(spec, url):
        return Injected()
    from elfctl.redact import secret
    from elfctl.services.gateway import keys

    raw = keys.mint(store, spec.name, revision=revision)
    value = secret(raw)  # registers the raw key for redaction before anything can print it
    return Injected({BASE_URL: url}, {API_KEY: value}, keys.split(raw))  # its public name (key list/revoke)


def revoke(store, injected: Injected) -> bool:
    """The minted key of a revision that never served (failed, refused, interrupted)."""
    if injected.prefix is None:
        return False
    from elfctl.services.gateway import keys

    return keys.revoke(store, injected.prefix)


def retire(store, team: str, serving: int) -> list[str]:
    """After the switch: every revision key of the team but the serving revision's is revoked
    (the replaced replicas are retired; keys left by deploys that were killed go too)."""
    if "gateway_keys" not in store.tables():
        return []
    from elfctl.services.gateway import keys

    return keys.revoke_team_revisions(store, team, keep={serving})


def settle(store, team: str, revision: int, served: bool, injected: Injected) -> list[str]:
    """After a rollout: a revision that serves keeps only its own key valid; one that never served
    loses the key minted for it. A store that refuses now costs a warning (returned), not the
    deploy: the next deploy's retire revokes what is left."""
    from elfctl.errors import ElfError

    try:
        if served:
            retire(store, team, revision)
        else:
            revoke(store, injected)
    except ElfError as exc:
        return [f"gateway keys not revoked yet ({exc.message}); the next deploy of {team} revokes "
                f"them, or `elfctl gateway key revoke PREFIX`"]
    return []


def revoke_quietly(store, injected: Injected) -> None:
    """The key of a deploy that broke off, revoked on the way out: the error that broke it is the
    one to report (a key left valid is revoked by the next deploy's retire)."""
    try:
        revoke(store, injected)
    except Exception:  # noqa: BLE001
        pass


def revoke_team(store, team: str) -> list[str]:
    """`team rm`: every key of the team that is still valid, the operator's too: the team is gone."""
    if "gateway_keys" not in store.tables():
        return []
    from elfctl.services.gateway import keys

    return [k.prefix for k in keys.listing(store, team) if k.revoked_at is None and keys.revoke(store, k.prefix)]
