"""Schema migrations: apply, report, verify, create and repair.

Each migration runs in one transaction together with its history row, so a failure leaves no
"dirty" version. Concurrent runs apply each migration once: Postgres holds a session advisory lock
for the whole run; on SQLite every migration's BEGIN IMMEDIATE takes the write lock, and the
applied set is re-read inside that transaction before anything runs.
"""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from elfctl import __version__
from elfctl.adapters.migration_files import discover
from elfctl.domain.clock import iso, now
from elfctl.domain.migrations import (
    CHECKSUM_ALGO,
    NAME_RE,
    Migration,
    checksum,
    first_line,
    split_statements,
)
from elfctl.errors import ElfError, InputError, MigrationError, OperationFailed, StoreNotMigrated
from elfctl.ports import Store

HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    file TEXT NOT NULL,
    checksum TEXT NOT NULL,
    checksum_algo TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    applied_by TEXT NOT NULL,
    elfctl_version TEXT NOT NULL,
    repaired_at TEXT
)
"""


RELOAD_SCHEMA = "NOTIFY pgrst, 'reload schema'"


@dataclass
class MigrationRow:
    version: int
    name: str
    file: str
    state: str  # applied | pending | drifted | missing_file
    applied_at: str | None = None
    duration_ms: int | None = None
    applied_by: str | None = None
    checksum: str | None = None


@dataclass
class MigrateResult:
    store: str
    dry_run: bool
    applied: list[MigrationRow] = field(default_factory=list)
    skipped: list[MigrationRow] = field(default_factory=list)  # applied by a concurrent run
    current_version: int = 0


@dataclass
class StatusResult:
    store: str
    current_version: int
    latest_version: int
    migrations: list[MigrationRow]

    @property
    def pending(self) -> int:
        return sum(1 for m in self.migrations if m.state == "pending")

    def to_data(self) -> dict:
        return {
            "store": self.store,
            "current_version": self.current_version,
            "latest_version": self.latest_version,
            "pending": self.pending,
            "migrations": self.migrations,
        }


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry (containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _now() -> str:
    return iso(now())


def _history(store: Store) -> dict[int, dict]:
    """The applied migrations. Read with `select`, so it works over Supabase's REST API too: `db status`
    and `db migrate --print-sql` need only SUPABASE_URL and SUPABASE_KEY."""
    return {r["version"]: r for r in store.select("schema_migrations", order="version")}


def sql_dialect(store: Store) -> str:
    """The migrations' dialect for a store: a Supabase project reached over REST is PostgreSQL."""
    return "sqlite" if store.dialect == "sqlite" else "postgres"


def _has_history(store: Store) -> bool:
    return "schema_migrations" in store.tables()


def _drift_error(m: Migration) -> MigrationError:
    return MigrationError(
        f"{m.path}: applied migration {m.version} was edited after it ran (checksum differs)",
        hint=f"restore the file as applied, or accept the edit with `elfctl db repair --file {m.file}`",
        code="checksum_drift",
    )


def status(store: Store, folder: Path) -> StatusResult:
    migrations = discover(folder, sql_dialect(store))
    applied = _history(store) if _has_history(store) else {}
    rows: list[MigrationRow] = []
    by_version = {m.version: m for m in migrations}
    for v in sorted(set(by_version) | set(applied)):
        m, h = by_version.get(v), applied.get(v)
        if h is None:
            rows.append(MigrationRow(v, m.name, m.file, "pending"))
            continue
        state = "missing_file" if m is None else "drifted" if h["checksum"] != m.checksum else "applied"
        rows.append(
            MigrationRow(
                v, h["name"], h["file"], state, h["applied_at"], h["duration_ms"], h["applied_by"], h["checksum"]
            )
        )
    return StatusResult(
        store=store.display_url,
        current_version=max(applied, default=0),
        latest_version=max(by_version, default=0),
        migrations=rows,
    )


def verify(store: Store, folder: Path) -> StatusResult:
    """Raise on the first drifted or missing applied file; else return the status."""
    result = status(store, folder)
    by_version = {m.version: m for m in discover(folder, sql_dialect(store))}
    for row in result.migrations:
        if row.state == "drifted":
            raise _drift_error(by_version[row.version])
        if row.state == "missing_file":
            raise MigrationError(
                f"{folder / row.file}: applied migration {row.version} has no file any more",
                hint="restore the file from version control",
                code="missing_migration",
            )
    return result


def migrate(
    store: Store,
    folder: Path,
    to: int | None = None,
    dry_run: bool = False,
    lock_timeout_s: float = 60.0,
    progress: Callable[[str], None] = lambda _msg: None,
) -> MigrateResult:
    migrations = discover(folder, sql_dialect(store))
    if to is not None and to not in {m.version for m in migrations} and to != 0:
        raise InputError(
            f"--to {to}: no migration with that version in {folder}",
            hint="see `elfctl db status` for the versions",
        )
    result = MigrateResult(store=store.display_url, dry_run=dry_run)
    wanted = [m for m in migrations if to is None or m.version <= to]

    if dry_run:
        applied = _history(store) if _has_history(store) else {}
        _check_drift(migrations, applied)
        result.applied = [MigrationRow(m.version, m.name, m.file, "pending") for m in wanted if m.version not in applied]
        result.current_version = max(applied, default=0)
        return result

    with store.exclusive("migrate", lock_timeout_s):
        with store.transaction() as tx:
            tx.execute(HISTORY_DDL, None)
        _check_drift(migrations, _history(store))
        for m in wanted:
            row = _apply_one(store, m, progress)
            (result.applied if row.state == "applied" else result.skipped).append(row)
        result.current_version = max(_history(store), default=0)
        if store.dialect == "postgres":
            # Supabase's PostgREST caches the schema: a function added now stays 404 (PGRST202) until
            # it reloads. Sent on every run (an earlier run may have died before sending it); on plain
            # Postgres nobody listens and it costs nothing.
            store.execute(RELOAD_SCHEMA, None)
    return result


def _check_drift(migrations: list[Migration], applied: dict[int, dict]) -> None:
    for m in migrations:
        h = applied.get(m.version)
        if h is not None and h["checksum"] != m.checksum:
            raise _drift_error(m)


def _apply_one(store: Store, m: Migration, progress: Callable[[str], None]) -> MigrationRow:
    statements = split_statements(m.sql)
    with store.transaction() as tx:
        # Re-read inside the write transaction: a concurrent run may have applied it meanwhile.
        if tx.query("SELECT version FROM schema_migrations WHERE version = ?", (m.version,)):
            return MigrationRow(m.version, m.name, m.file, "skipped")
        progress(f"applying {m.file}")
        started = time.perf_counter()
        for index, stmt in enumerate(statements, 1):
            try:
                tx.execute(stmt, None)
            except Exception as exc:
                if isinstance(exc, ElfError) and not isinstance(exc, (StoreNotMigrated, InputError)):
                    raise  # the store failed (unreachable, locked, full), not the file
                # a missing table or a refused value here is the file's mistake: name it, and the
                # database's own words (the adapter's error keeps them as its cause)
                raise MigrationError(
                    f"{m.path}: statement {index} of {len(statements)} failed: {_one_line(exc.__cause__ or exc)}"
                    f" [{first_line(stmt)}]",
                    hint="fix the file and run `elfctl db migrate` again; nothing of it was applied",
                ) from None
        duration_ms = int((time.perf_counter() - started) * 1000)
        applied_at, who = _now(), _who()
        tx.execute(
            "INSERT INTO schema_migrations (version, name, file, checksum, checksum_algo, applied_at,"
            " duration_ms, applied_by, elfctl_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (m.version, m.name, m.file, m.checksum, CHECKSUM_ALGO, applied_at, duration_ms, who, __version__),
        )
    return MigrationRow(m.version, m.name, m.file, "applied", applied_at, duration_ms, who, m.checksum)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


def new(folder: Path, name: str, dialects: bool = False) -> list[Path]:
    """Create the next migration file(s). `dialects=True` writes a .sqlite.sql and .postgres.sql pair."""
    if not NAME_RE.match(name):
        raise InputError(
            f"migration name {name!r} is not valid",
            hint="use lower case letters, digits and underscores, e.g. add_team_index",
        )
    existing = discover(folder, "sqlite") + discover(folder, "postgres")
    version = max((m.version for m in existing), default=0) + 1
    stem = f"{version:04d}_{name}"
    paths = [folder / f"{stem}.{d}.sql" for d in ("sqlite", "postgres")] if dialects else [folder / f"{stem}.sql"]
    for path in paths:
        with path.open("x", encoding="utf-8") as fh:  # "x": never overwrite
            fh.write(f"-- {stem}: describe what this migration does and why.\n")
    return paths


@dataclass
class RepairResult:
    file: str
    version: int
    old_checksum: str
    new_checksum: str
    changed: bool


def repair(store: Store, folder: Path, file: str) -> RepairResult:
    """Accept the current content of ONE applied file by re-recording its checksum."""
    name = Path(file).name
    migrations = {m.file: m for m in discover(folder, sql_dialect(store))}
    m = migrations.get(name)
    if m is None:
        raise InputError(f"{file}: no such migration file in {folder}", hint="see `elfctl db status`")
    if not _has_history(store):
        raise OperationFailed(f"{name}: the store has no migration history yet", hint="run `elfctl db migrate`")
    with store.transaction() as tx:
        rows = tx.query("SELECT checksum FROM schema_migrations WHERE version = ?", (m.version,))
        if not rows:
            raise InputError(f"{name}: migration {m.version} is not applied, nothing to repair",
                             hint="run `elfctl db migrate` to apply it")
        old = rows[0]["checksum"]
        if old != m.checksum:
            tx.execute(
                "UPDATE schema_migrations SET checksum = ?, checksum_algo = ?, repaired_at = ? WHERE version = ?",
                (m.checksum, CHECKSUM_ALGO, _now(), m.version),
            )
    return RepairResult(name, m.version, old, m.checksum, old != m.checksum)


__all__ = ["migrate", "status", "verify", "new", "repair", "checksum"]
