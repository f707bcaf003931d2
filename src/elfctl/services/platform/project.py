"""`elfctl init`: lay out a project. Safe to run twice: existing files are kept, never overwritten."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from elfctl.config import CONFIG_FILE
from elfctl.errors import InputError

CONFIG_TEMPLATE = """\
# elfctl.toml: configuration of this elfctl platform.
# Precedence: this file < [profiles.NAME] (with --profile NAME) < ELFCTL_* env vars < flags.
# `elfctl config show` prints the effective values and where each came from.

[project]
name = "{name}"

[store]
# Default: SQLite in .elf/elf.db under this folder. For PostgreSQL (a Supabase project's database
# works too) use postgresql://user:password@host:5432/db, best through ELFCTL_STORE_URL so that
# the password stays out of this file.
# url = "sqlite:///.elf/elf.db"

[deploy]
# Where teams run: "docker" (this machine) or "kubernetes".
target = "docker"

[teams]
# Folder holding teams/<name>/team.yaml
dir = "teams"

# Profiles override any table above, e.g. `elfctl --profile production deploy my-team`.
[profiles.dev]

[profiles.staging]

[profiles.production]
"""


@dataclass
class InitResult:
    root: Path
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def init(root: Path) -> InitResult:
    result = InitResult(root=root)
    try:
        root.mkdir(parents=True, exist_ok=True)

        def ensure_file(rel: str, text: str) -> None:
            path = root / rel
            if path.exists():
                result.kept.append(rel)
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("x", encoding="utf-8") as fh:
                fh.write(text)
            result.created.append(rel)

        def ensure_dir(rel: str) -> None:
            path = root / rel
            (result.kept if path.is_dir() else result.created).append(rel + "/")
            path.mkdir(parents=True, exist_ok=True)

        ensure_file(CONFIG_FILE, CONFIG_TEMPLATE.format(name=root.name))
        ensure_dir("teams")
        ensure_dir(".elf")
        ensure_file(".elf/.gitignore", "# elfctl's local state: the SQLite store, spools, keys.\n*\n")
        gitignore = root / ".gitignore"
        lines = gitignore.read_text().splitlines() if gitignore.exists() else []
        if ".elf/" not in lines and ".elf" not in lines:
            with gitignore.open("a", encoding="utf-8") as fh:
                if lines and lines[-1] != "":
                    fh.write("\n")
                fh.write(".elf/\n")
            result.created.append(".gitignore (.elf/)")
        else:
            result.kept.append(".gitignore")
    except OSError as exc:
        raise InputError(f"{exc.filename or root}: cannot write ({exc.strerror})",
                         hint="run `elfctl init` in a folder you can write to") from None
    return result
