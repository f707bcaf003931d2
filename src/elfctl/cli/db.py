from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.bounds import bounded
from elfctl.cli.common import JsonOpt, get_app

app = typer.Typer(help="Evolve the store's schema: versioned, checksummed, transactional migrations.",
                  no_args_is_help=True)


def _rows_table(title, rows):
    from rich.table import Table

    table = Table(title=title)
    for col in ("version", "file", "state", "applied at", "ms", "by"):
        table.add_column(col)
    for r in rows:
        table.add_row(f"{r.version:04d}", r.file, r.state, r.applied_at or "", "" if r.duration_ms is None else str(r.duration_ms),
                      r.applied_by or "")
    return table


@app.command("migrate")
def migrate(
    ctx: typer.Context,
    to: Annotated[int | None, typer.Option("--to", help="Apply up to this version (inclusive).", callback=bounded(0, 9999))] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would run; change nothing.")] = False,
    print_sql: Annotated[bool, typer.Option(
        "--print-sql", help="Print the pending migrations as one SQL script (for Supabase's SQL editor); "
                            "change nothing.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Apply pending migrations, each in one transaction with its history row."""
    from elfctl.services.platform import migrate as svc

    app_ = get_app(ctx, json_mode)
    if print_sql:
        _print_sql(app_, to, dry_run)
        return
    result = svc.migrate(app_.store, app_.migrations_dir, to=to, dry_run=dry_run,
                         lock_timeout_s=app_.config.get("store.lock_timeout_s"), progress=app_.output.info)

    def human(r):
        verb = "would apply" if r.dry_run else "applied"
        if not r.applied:
            return f"{r.store}: up to date at version {r.current_version}" + (
                f" ({len(r.skipped)} applied by a concurrent run)" if r.skipped else "")
        lines = [f"{r.store}: {verb} {len(r.applied)} migration(s)"]
        lines += [f"  {m.version:04d} {m.file}" + (f" ({m.duration_ms} ms)" if m.duration_ms is not None else "")
                  for m in r.applied]
        if not r.dry_run:
            lines.append(f"now at version {r.current_version}")
        return "\n".join(lines)

    app_.output.result(result, human)


def _print_sql(app_, to: int | None, dry_run: bool) -> None:
    import sys

    from elfctl.errors import InputError
    from elfctl.redact import scrub
    from elfctl.services.platform import migration_script as svc

    if dry_run:
        raise InputError("--print-sql and --dry-run: choose one",
                         hint="--print-sql already changes nothing; drop --dry-run")
    script = svc.print_sql(app_.store, app_.migrations_dir, to=to)
    app_.output.info(f"{script.store}: {len(script.migrations)} pending migration(s) as one {script.dialect} "
                     "script" + (" (nothing to apply)" if not script.migrations else ""))
    # The script goes to stdout as it is: rich would wrap its long lines.
    app_.output.result(script, lambda r: sys.stdout.write(scrub(r.sql)) and None)


@app.command("status")
def status(ctx: typer.Context, json_mode: JsonOpt = False) -> None:
    """List migrations: applied, pending, drifted (edited after applying) or missing."""
    from elfctl.services.platform import migrate as svc

    app_ = get_app(ctx, json_mode)
    result = svc.status(app_.store, app_.migrations_dir)
    app_.output.result(result, lambda r: _rows_table(
        f"{r.store}: version {r.current_version} of {r.latest_version}, {r.pending} pending", r.migrations))


@app.command("verify")
def verify(ctx: typer.Context, json_mode: JsonOpt = False) -> None:
    """Check that every applied migration file is unchanged (SHA-256, line endings normalised)."""
    from elfctl.services.platform import migrate as svc

    app_ = get_app(ctx, json_mode)
    result = svc.verify(app_.store, app_.migrations_dir)
    applied = sum(1 for m in result.migrations if m.state == "applied")
    app_.output.result(result, lambda r: f"{r.store}: {applied} applied migration(s) verified, "
                                         f"{r.pending} pending")


@app.command("new")
def new(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Short name: lower case, digits, underscores.")],
    per_dialect: Annotated[bool, typer.Option("--per-dialect",
                                              help="Write a .sqlite.sql and a .postgres.sql file.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Create the next migration file in the migrations folder."""
    from elfctl.services.platform import migrate as svc

    app_ = get_app(ctx, json_mode)
    paths = svc.new(app_.migrations_dir, name, dialects=per_dialect)
    app_.output.result({"created": [str(p) for p in paths]},
                       lambda r: "\n".join(f"created {p}" for p in r["created"]))


@app.command("repair")
def repair(
    ctx: typer.Context,
    file: Annotated[str, typer.Option("--file", help="The one applied migration file whose edit to accept.")],
    json_mode: JsonOpt = False,
) -> None:
    """Accept the current content of ONE applied migration file (re-record its checksum)."""
    from elfctl.services.platform import migrate as svc

    app_ = get_app(ctx, json_mode)
    result = svc.repair(app_.store, app_.migrations_dir, file)
    app_.output.result(result, lambda r: (
        f"{r.file}: checksum re-recorded ({r.old_checksum[:12]} -> {r.new_checksum[:12]})"
        if r.changed else f"{r.file}: checksum already matches, nothing changed"))
