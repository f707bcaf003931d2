"""`elfctl team new/list/validate/rm`: scaffold a team that builds and answers its health check out of
the box (busybox httpd on the local base image, a static IETF health document), list and check them,
and take one off its target for good."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from elfctl.adapters import team_files as team_mod
from elfctl.domain.names import check_team_name
from elfctl.errors import ElfError, InputError, OperationFailed

TEAM_YAML = """\
# {name}: a team of AI agents, shipped with `elfctl deploy {name}`.
name: {name}
description: "{description}"
port: 8080              # the port the team listens on inside its container
# host_port: 18080      # where users reach it on this machine (default: Docker picks a free port)
replicas: 1
build:
  context: .
  dockerfile: Dockerfile
health:
  path: /health         # answers IETF health JSON: {{"status": "pass" | "warn" | "fail"}}
  period_s: 1
  timeout_s: 2
  success_threshold: 2
  failure_threshold: 3
  start_timeout_s: 60
  # soak_s: 10          # verification window after the switch (default: deploy.soak_s, 10 s)
env:
  LOG_LEVEL: info
secrets: []             # names of credentials, e.g. [SLACK_TOKEN]; values never live here
# secrets_as: files     # each value in /run/secrets/NAME (path in NAME_FILE), not in the environment
resources:
  cpu: 500m
  memory: 128Mi
llm:
  gateway: true         # deploy injects OPENAI_BASE_URL (the platform's LLM gateway) and a team key
                        # as OPENAI_API_KEY; false: the team brings its own LLM access
  model: gpt-4o-mini
  fallbacks: []
  budget:
    daily_usd: 5
    monthly_usd: 100
mcp_servers: []
"""

DOCKERFILE = """\
# Built FROM elfctl's local busybox base image (`elfctl infra up` builds it; nothing is pulled).
FROM {base_image}
COPY www /www
EXPOSE 8080
CMD ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
"""

HEALTH = '{"status": "pass", "output": "static health document"}\n'
INDEX = "<!doctype html><title>{name}</title><p>{name} is running.</p>\n"


@dataclass
class NewResult:
    name: str
    folder: Path
    files: list[str] = field(default_factory=list)


@dataclass
class TeamRow:
    name: str
    path: Path
    valid: bool
    port: int | None = None
    replicas: int | None = None
    host_port: int | None = None
    error: str | None = None
    hint: str | None = None


def new(teams_dir: Path, name: str, base_image: str, description: str = "") -> NewResult:
    check_team_name(name)
    folder = teams_dir / name
    if folder.exists():
        raise InputError(
            f"{folder}: already exists", hint=f"choose another name, or edit {folder / 'team.yaml'}"
        )
    files = {
        "team.yaml": TEAM_YAML.format(
            name=name, description=description.replace('"', "'") or f"The {name} team"
        ),
        "Dockerfile": DOCKERFILE.format(base_image=base_image),
        "www/health": HEALTH,
        "www/index.html": INDEX.format(name=name),
    }
    try:
        for rel, text in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"{exc.filename or folder}: cannot write ({exc.strerror})",
            hint="check the permissions of teams.dir",
        ) from None
    team_mod.load(folder / "team.yaml")  # the scaffold must itself be valid
    return NewResult(name, folder, sorted(files))


def rows(teams_dir: Path, name: str | None = None) -> list[TeamRow]:
    paths = team_mod.discover(teams_dir)
    if name is not None:
        team_mod.find(teams_dir, name)  # a clear error for an unknown or invalid name
        paths = [teams_dir / name / "team.yaml"]
    out = []
    for path in paths:
        try:
            spec = team_mod.load(path)
            out.append(TeamRow(spec.name, path, True, spec.port, spec.replicas, spec.host_port))
        except ElfError as exc:
            out.append(TeamRow(path.parent.name, path, False, error=exc.message, hint=exc.hint))
    return out


def validate(teams_dir: Path, name: str | None = None) -> list[TeamRow]:
    """Every team (or one); raises InputError naming the first invalid one after checking all."""
    result = rows(teams_dir, name)
    if not result and name is None:
        raise InputError(
            f"{teams_dir}: no teams (no */team.yaml)", hint="create one with `elfctl team new NAME`"
        )
    bad = [r for r in result if not r.valid]
    if bad:
        more = f" (and {len(bad) - 1} more invalid team(s))" if len(bad) > 1 else ""
        raise InputError(bad[0].error + more, hint=bad[0].hint)
    from elfctl.services.deploy.registry_hooks import check_loops

    check_loops([team_mod.load(p) for p in team_mod.discover(teams_dir)])  # a loop may pass through others
    return result


def check_mcp_servers(app, name: str | None = None) -> None:
    """The MCP servers the teams name are declared (the store is read only when one names any)."""
    from elfctl.services.deploy.mcp_hooks import check_declared

    check_declared(app, [team_mod.load(p) for p in team_mod.discover(app.teams_dir)
                         if name is None or p.parent.name == name])


# --- rm --------------------------------------------------------------------------------------------


@dataclass
class RemoveResult:
    name: str
    target: str
    stopped: bool  # something was running on the target and is stopped now
    removed_revisions: list[int] = field(default_factory=list)  # served until now; recorded `removed`
    history: int = 0  # deployment rows kept
    purge: bool = False
    images_removed: list[str] = field(default_factory=list)
    registry_removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    folder: Path | None = None  # teams/NAME, when it is still there (the user's to delete)
    revoked_keys: list[str] = field(default_factory=list)  # prefixes of the team's LLM gateway keys revoked


def remove(store, target, engine, registry, teams_dir: Path, name: str, *, purge: bool = False,
           confirm: Callable[[str], bool] | None = None, lock_ttl_s: float = 30.0,
           lock_wait_s: float = 0.0) -> RemoveResult:
    """Stop the team on its target and record that its serving revision was removed, so `health` and
    `infra status` stop looking for it. The deployment history stays; images stay unless `purge`
    (then this engine's images of the team go, and, best effort, its registry tags). teams/NAME is
    left alone: the team's source is the user's. `confirm(plan)` is asked before anything changes."""
    from elfctl.services.deploy import gateway_env, images
    from elfctl.services.deploy.flow import who
    from elfctl.services.deploy.lock import lease

    check_team_name(name)
    if "deployments" not in store.tables():
        raise InputError(f"store {store.display_url} has no deployments table yet",
                         hint="run `elfctl infra up` (or `elfctl db migrate`) first")
    history = store.query("SELECT COUNT(*) AS n FROM deployments WHERE team = ?", (name,))[0]["n"]
    folder = teams_dir / name
    running = name in target.teams()
    if not history and not running and not folder.is_dir():
        raise InputError(f"no team {name}: not in the deployment history, not running on {target.name}, "
                         f"no folder {folder}", code="not_found",
                         hint="`elfctl deployments` and `elfctl team list` show the teams")
    repo = images.repository(registry.address, name)
    plan = f"stop team {name} on {target.name}" + (
        f", remove its images ({repo}) from this engine and the registry" if purge else "")
    if confirm is not None and not confirm(plan + "; its deployment history is kept"):
        raise OperationFailed(f"team rm {name}: not confirmed; nothing changed", code="aborted",
                              hint="answer y, or pass --yes")
    result = RemoveResult(name, target.name, False, history=history, purge=purge,
                          folder=folder if folder.is_dir() else None)
    with lease(store, name, who(), ttl_s=lock_ttl_s, wait_s=lock_wait_s):
        result.stopped = target.stop(name)
        result.removed_revisions = _record_removed(store, name, who())
        result.revoked_keys = gateway_env.revoke_team(store, name)  # nothing of the team may call the gateway
    if not purge:
        result.kept.append(f"images of {repo} (on this engine and in the registry; --purge removes them)")
        return result
    result.images_removed = images.prune(engine, repo, keep=set())
    try:
        seen: set[str] = set()
        for tag in registry.tags(repo):
            digest = registry.digest(repo, tag)
            if digest and digest not in seen and registry.delete(repo, digest):
                result.registry_removed.append(f"{repo}:{tag}")
            seen.add(digest)
    except ElfError as exc:  # best effort: the engine's copies are gone, the registry's are reported
        result.kept.append(f"registry tags of {repo}: {exc.message}")
    return result


def _record_removed(store, team: str, by: str) -> list[int]:
    """Mark the serving revision `removed` (who and when in its details): no longer a deployed team,
    not a rollback target, and the next deploy starts a fresh revision."""
    from elfctl.domain.clock import iso, now

    stamp = iso(now())
    revisions = []
    with store.transaction() as tx:
        for row in tx.query("SELECT id, revision, details FROM deployments WHERE team = ? AND state = 'switched'",
                            (team,)):
            details = json.loads(row["details"]) if row["details"] else {}
            details["removed"] = {"by": by, "at": stamp, "command": f"elfctl team rm {team}"}
            tx.execute("UPDATE deployments SET state = 'removed', updated_at = ?, details = ? WHERE id = ?",
                       (stamp, json.dumps(details), row["id"]))
            revisions.append(row["revision"])
    return sorted(revisions)
