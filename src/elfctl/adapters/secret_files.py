"""Secret values as files for Docker containers (team.yaml `secrets_as: files`).

Each container gets a folder under a tmpfs (memory, never disk) holding one read-only file per value,
each bind-mounted at /run/secrets/NAME: `docker inspect` then shows paths, not values. The folder is
mode 0700 and goes with its container; a reboot empties the tmpfs, so a team is deployed again
(`elfctl infra up`) before its containers can start, and no value ever waits on a disk.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from elfctl.errors import InputError

MEMORY_FS = ("tmpfs", "ramfs")


def filesystem(path: Path) -> str:
    """The type of the filesystem holding `path` (the longest mount point above it in /proc/mounts)."""
    best, kind = "", ""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return ""
    target = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


class SecretFiles:
    def __init__(self, base: Path, source: str = "deploy.secrets_dir"):
        self.base = Path(base)
        self.source = source  # named in errors

    def ready(self) -> Path:
        """The base folder, created 0700; an InputError when it is not in memory."""
        self.base.mkdir(mode=0o700, parents=True, exist_ok=True)
        kind = filesystem(self.base)
        if kind not in MEMORY_FS:
            raise InputError(
                f"{self.source} {self.base} is on {kind or 'an unknown filesystem'}, not in memory: "
                "secret files would land on disk",
                hint=f"set {self.source} to a folder on a tmpfs, such as /dev/shm/elfctl-secrets",
            )
        os.chmod(self.base, 0o700)
        return self.base

    def write(self, container: str, values: dict[str, str], mount_dir: str) -> dict[str, str]:
        """Write the container's files; returns {host file: path in the container} to bind read-only."""
        folder = self.ready() / container
        shutil.rmtree(folder, ignore_errors=True)  # a leftover of a killed deploy under the same name
        folder.mkdir(mode=0o700)
        binds = {}
        for name, value in values.items():
            path = folder / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)  # readable by the team's user
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(value)
            binds[str(path)] = f"{mount_dir}/{name}"
        return binds

    def remove(self, containers: list[str]) -> None:
        for name in containers:
            shutil.rmtree(self.base / name, ignore_errors=True)

    def sweep(self, pattern: re.Pattern, live: set[str]) -> None:
        """Remove the folders of containers whose name matches `pattern` and that no longer exist."""
        if self.base.is_dir():
            self.remove([p.name for p in self.base.iterdir() if pattern.fullmatch(p.name) and p.name not in live])
