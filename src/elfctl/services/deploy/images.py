"""A team's image: tagged by a hash of its build context, so an unchanged team is neither rebuilt
nor pushed; built, pushed, fetched back, and pruned without touching what rollback needs."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict
from pathlib import Path

from elfctl.errors import InputError

SKIP_DIRS = {".git", "__pycache__", ".elf", ".venv", "node_modules"}


def context_hash(spec) -> str:
    """SHA-256 over the build context's files (path, executable bit, content), sorted. team.yaml is
    left out: its runtime fields are compared separately (config_key) and need no new image."""
    root = spec.context_dir
    if not root.is_dir():
        raise InputError(
            f"{spec.path}: build.context: {root} is not a folder", hint="point it at the build context"
        )
    dockerfile = root / spec.build.dockerfile
    if not dockerfile.is_file():
        raise InputError(
            f"{spec.path}: build.dockerfile: {dockerfile} does not exist",
            hint="add a Dockerfile or fix build.dockerfile",
        )
    h = hashlib.sha256()
    h.update(f"dockerfile={spec.build.dockerfile}\n".encode())
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS for part in rel.parts) or path.is_dir():
            continue
        if path.resolve() == spec.path.resolve():
            continue
        mode = "x" if path.stat().st_mode & 0o111 else "-"
        h.update(f"{rel.as_posix()}\0{mode}\0".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def config_key(spec, image: str, secret_versions: str = "", gateway: str = "") -> str:
    """What the running containers depend on besides the image: a change here redeploys.
    `secret_versions` names the credential versions injected (never values): a rotation redeploys."""
    runtime = {
        "image": image,
        "port": spec.port,
        "replicas": spec.replicas,
        "env": spec.env,
        "secrets": list(spec.secrets),
        "resources": asdict(spec.resources),
        "health": asdict(spec.health),
        "host_port": spec.host_port,
    }
    if secret_versions:  # left out when empty, so keys recorded before it existed still match
        runtime["secret_versions"] = secret_versions
    if spec.secrets_as != "env":  # likewise
        runtime["secrets_as"] = spec.secrets_as
    if gateway:  # the LLM gateway's URL in the team (likewise); a new revision's key is not config
        runtime["gateway"] = gateway
    return hashlib.sha256(json.dumps(runtime, sort_keys=True).encode()).hexdigest()[:16]


def git_commit(folder: Path) -> str | None:
    """HEAD of the repository holding the team (with '-dirty' when it has local changes)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def repository(registry_address: str, team: str) -> str:
    return f"{registry_address}/elfctl/{team}"


def ensure_local(engine, repo: str, tag: str) -> None:
    if not engine.image_id(f"{repo}:{tag}"):
        engine.pull(repo, tag)


def prune(engine, team_repo: str, keep: set[str]) -> list[str]:
    """Remove this team's local images except `keep` (refs still needed: serving and the recorded
    successful revisions kept for rollback). The registry keeps every pushed tag, so even a pruned
    revision can be rolled back to by pulling it again."""
    removed = []
    for img in engine.images(label="elfctl.team"):
        for ref in img.get("RepoTags") or []:
            if ref.rsplit(":", 1)[0] == team_repo and ref not in keep:
                if engine.remove_image(ref):
                    removed.append(ref)
    return removed
