"""`db migrate --print-sql`: the pending migrations as one script, for people who can reach the
database only through Supabase's SQL editor (or psql), not through elfctl.

One transaction: the history table, then each migration with its `schema_migrations` row (the same
checksum `db migrate` records, so `db status` and `db verify` see it as applied), then
`NOTIFY pgrst, 'reload schema'` so PostgREST sees the new functions at once. On PostgreSQL each
migration is guarded by its version: it runs only if `schema_migrations` does not have it yet, so
running the script twice, or after `db migrate` applied part of it meanwhile, applies nothing twice.
Reading what is pending changes nothing in the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from elfctl import __version__
from elfctl.adapters.migration_files import discover
from elfctl.domain.migrations import CHECKSUM_ALGO, Migration, split_statements
from elfctl.errors import InputError
from elfctl.ports import Store
from elfctl.services.platform.migrate import HISTORY_DDL, RELOAD_SCHEMA, MigrationRow, sql_dialect, verify

# applied_at in the format elfctl's own history rows use (domain.clock.iso): 2026-01-31T12:00:00.000+00:00
_NOW_ISO = "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"+00:00\"')"


@dataclass
class Script:
    store: str
    dialect: str  # the SQL dialect of the script: postgres (Supabase) or sqlite
    current_version: int
    migrations: list[MigrationRow] = field(default_factory=list)  # what the script applies
    sql: str = ""


def print_sql(store: Store, folder: Path, to: int | None = None) -> Script:
    dialect = sql_dialect(store)
    migrations = discover(folder, dialect)
    if to is not None and to != 0 and to not in {m.version for m in migrations}:
        raise InputError(f"--to {to}: no migration with that version in {folder}",
                         hint="see `elfctl db status` for the versions")
    current = verify(store, folder)  # an edited applied file stops here, as it stops `db migrate`
    pending = {r.version for r in current.migrations if r.state == "pending"}
    chosen = [m for m in migrations if m.version in pending and (to is None or m.version <= to)]
    body = _postgres(chosen) if dialect == "postgres" else _sqlite(chosen)
    return Script(current.store, dialect, current.current_version,
                  [MigrationRow(m.version, m.name, m.file, "pending") for m in chosen], body)


def _header(chosen: list[Migration]) -> list[str]:
    span = f"{chosen[0].version:04d}..{chosen[-1].version:04d}" if chosen else "none"
    return [f"-- elfctl {__version__}: pending migrations {span}, in one transaction.",
            "-- Paste into the SQL editor (or psql -v ON_ERROR_STOP=1 -f FILE); then `elfctl db status`.",
            "BEGIN;", HISTORY_DDL.strip() + ";"]


def _history_insert(m: Migration, now_sql: str, who_sql: str) -> str:
    return ("INSERT INTO schema_migrations (version, name, file, checksum, checksum_algo, applied_at, "
            f"duration_ms, applied_by, elfctl_version) VALUES ({m.version}, {_lit(m.name)}, {_lit(m.file)}, "
            f"{_lit(m.checksum)}, {_lit(CHECKSUM_ALGO)}, {now_sql}, 0, {who_sql}, {_lit(__version__)})")


def _postgres(chosen: list[Migration]) -> str:
    out = _header(chosen)
    for m in chosen:
        outer = _tag(m.sql, "elfctl_migration")
        out.append(f"\n-- {m.file}")
        out.append(f"DO {outer} BEGIN\nIF EXISTS (SELECT 1 FROM schema_migrations WHERE version = "
                   f"{m.version}) THEN\n  RAISE NOTICE 'elfctl: {m.file} is already applied, skipped';\n  RETURN;\n"
                   "END IF;")
        for stmt in split_statements(m.sql):
            tag = _tag(stmt, "elfctl_stmt")
            out.append(f"EXECUTE {tag}\n{stmt}\n{tag};")
        out.append(_history_insert(m, _NOW_ISO, "'sql-editor:' || current_user") + ";")
        out.append(f"END {outer};")
    out += ["", RELOAD_SCHEMA + ";", "COMMIT;", ""]
    return "\n".join(out)


def _sqlite(chosen: list[Migration]) -> str:
    """sqlite3's shell runs it; no procedural guard exists, so it is only what is pending now."""
    out = _header(chosen)
    for m in chosen:
        out.append(f"\n-- {m.file}")
        out += [stmt + ";" for stmt in split_statements(m.sql)]
        out.append(_history_insert(m, "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')", "'sql-script'") + ";")
    out += ["COMMIT;", ""]
    return "\n".join(out)


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _tag(text: str, base: str) -> str:
    """A dollar-quote tag that does not occur in `text` (letters only: the splitter's tag grammar)."""
    tag = f"${base}$"
    while tag in text:
        tag = tag[:-1] + "x$"
    return tag
