"""`elfctl team new/list/validate`: scaffold a team that builds and answers its health check out of
the box (busybox httpd on the local base image, a static IETF health document), list and check them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from elfctl.domain import team as team_mod
from elfctl.domain.names import check_team_name
from elfctl.errors import ElfError, InputError

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
  soak_s: 3
env:
  LOG_LEVEL: info
secrets: []             # names of credentials, e.g. [OPENAI_API_KEY]; values never live here
# secrets_as: files     # each value in /run/secrets/NAME (path in NAME_FILE), not in the environment
resources:
  cpu: 500m
  memory: 128Mi
llm:
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
    return result
