"""Migration files: naming rules, per-dialect choice, checksums and statement splitting. No I/O:
adapters/migration_files.py reads the folder."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from elfctl.errors import InputError

CHECKSUM_ALGO = "sha256-lf"  # SHA-256 over the file with CRLF/CR normalised to LF
DIALECTS = ("sqlite", "postgres")
_FILE = re.compile(r"^(?P<version>\d{4,})_(?P<name>[a-z0-9_]+?)(?:\.(?P<dialect>sqlite|postgres))?\.sql$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str
    checksum: str

    @property
    def file(self) -> str:
        return self.path.name


def checksum(text: str) -> str:
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def choose(folder: Path, files: list[str], dialect: str) -> list[tuple[int, str, Path]]:
    """(version, name, path) of the migrations for `dialect` among the file names of `folder`, in
    version order. A dialect file (`0003_x.postgres.sql`) replaces the common one (`0003_x.sql`)
    for that dialect. adapters/migration_files.py lists the folder and reads what this picks."""
    chosen: dict[int, tuple[Path, str, str | None]] = {}
    names: dict[int, str] = {}
    for path in sorted(folder / f for f in files):
        if path.suffix != ".sql":
            continue
        m = _FILE.match(path.name)
        if not m:
            raise InputError(
                f"{path}: file name does not follow NNNN_name[.sqlite|.postgres].sql",
                hint="rename it, e.g. 0007_add_index.sql (lower case, digits, underscores)",
            )
        version, name, file_dialect = int(m["version"]), m["name"], m["dialect"]
        if version in names and names[version] != name:
            raise InputError(
                f"{path}: version {version} is already used by '{names[version]}'",
                hint="give each migration its own version number (`elfctl db new NAME` picks the next one)",
            )
        names[version] = name
        if file_dialect not in (None, dialect):
            continue
        current = chosen.get(version)
        if current is None or (file_dialect is not None and current[2] is None):
            chosen[version] = (path, name, file_dialect)
    return [(version, chosen[version][1], chosen[version][0]) for version in sorted(chosen)]


def migration(version: int, name: str, path: Path, text: str) -> Migration:
    return Migration(version, name, path, text, checksum(text))


def split_statements(sql: str) -> list[str]:
    """Split a script on `;` outside quotes, comments and $$-bodies. Comment-only pieces dropped."""
    out: list[str] = []
    buf: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            buf.append(sql[i:j])
            i = j
            continue
        if c == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            buf.append(sql[i:j])
            i = j
            continue
        if c in ("'", '"'):
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            buf.append(sql[i : j + 1])
            i = j + 1
            continue
        if c == "$":
            m = re.match(r"\$[A-Za-z_]*\$", sql[i:])
            if m:
                tag = m.group(0)
                j = sql.find(tag, i + len(tag))
                j = n if j < 0 else j + len(tag)
                buf.append(sql[i:j])
                i = j
                continue
        if c == ";":
            out.append("".join(buf))
            buf = []
            i += 1
            continue
        buf.append(c)
        i += 1
    out.append("".join(buf))
    return [s.strip() for s in out if _has_code(s)]


def _has_code(stmt: str) -> bool:
    no_comments = re.sub(r"--[^\n]*|/\*.*?\*/", "", stmt, flags=re.S)
    return bool(no_comments.strip())


def first_line(stmt: str) -> str:
    for line in stmt.splitlines():
        line = line.strip()
        if line and not line.startswith("--"):
            return line[:120]
    return stmt[:120]
