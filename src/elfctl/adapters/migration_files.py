"""The migrations folder: list it, and read the files domain/migrations.py chooses for a dialect."""

from __future__ import annotations

from pathlib import Path

from elfctl.domain.migrations import Migration, choose, migration
from elfctl.errors import InputError


def discover(folder: Path, dialect: str) -> list[Migration]:
    """The migrations for `dialect`, in version order (see domain.migrations.choose)."""
    if not folder.is_dir():
        raise InputError(f"{folder}: migrations folder not found", hint="set store.migrations_dir")
    files = [p.name for p in folder.iterdir()]
    out = []
    for version, name, path in choose(folder, files, dialect):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read the migration ({getattr(exc, 'strerror', None) or exc})",
                             hint="make it a readable UTF-8 file") from None
        out.append(migration(version, name, path, text))
    return out
