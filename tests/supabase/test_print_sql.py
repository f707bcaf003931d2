"""`db migrate --print-sql`: the script a Supabase user pastes into the SQL editor. Applied with psql
to a fresh database it gives exactly the schema `db migrate` gives; printing changes nothing; the
script is safe to run twice; after `db migrate`, PostgREST is told to reload its schema cache."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.conftest import run_elfctl
from tests.supabase.schema_dump import dump

PSQL = next((p for p in ("/usr/lib/postgresql/15/bin/psql", "/usr/bin/psql") if Path(p).exists()), "psql")


def _elfctl(project, url, *args):
    return run_elfctl(*args, cwd=project, env={"ELFCTL_STORE_URL": url})


def _psql(url, sql: str) -> subprocess.CompletedProcess:
    return subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url], input=sql, capture_output=True,
                          text=True, timeout=120)


def _public_tables(url) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


@pytest.fixture
def second_db(pg_dsn):
    import uuid

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_dsn.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_printed_script_gives_the_schema_migrate_gives(project, pg_url, second_db):
    res = _elfctl(project, second_db, "db", "migrate", "--print-sql")
    assert res.returncode == 0, res.stderr
    script = res.stdout
    assert script.startswith("-- elfctl") and "\nBEGIN;\n" in script and script.rstrip().endswith("COMMIT;")
    assert "NOTIFY pgrst, 'reload schema';" in script
    assert "pending migration(s) as one postgres script" in res.stderr
    assert _public_tables(second_db) == []  # printing changed nothing

    applied = _psql(second_db, script)
    assert applied.returncode == 0, applied.stderr
    assert _elfctl(project, pg_url, "db", "migrate").returncode == 0

    by_script, by_migrate = dump(second_db), dump(pg_url)
    assert by_script["history"] and by_script == by_migrate

    status = json.loads(_elfctl(project, second_db, "db", "status", "--json").stdout)
    assert status["pending"] == 0 and {m["state"] for m in status["migrations"]} == {"applied"}
    assert all(m["applied_by"].startswith("sql-editor:") for m in status["migrations"])
    assert _elfctl(project, second_db, "db", "verify").returncode == 0
    again = json.loads(_elfctl(project, second_db, "db", "migrate", "--json").stdout)
    assert again["applied"] == []


def test_only_what_is_pending_and_safe_to_run_twice(project, pg_url, second_db):
    assert _elfctl(project, pg_url, "db", "migrate", "--to", "50").returncode == 0
    res = _elfctl(project, pg_url, "db", "migrate", "--print-sql", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["dialect"] == "postgres" and out["current_version"] == 50
    versions = [m["version"] for m in out["migrations"]]
    assert versions and min(versions) > 50
    assert "-- 0001_core" not in out["sql"] and f"-- {out['migrations'][0]['file']}" in out["sql"]

    first = _psql(pg_url, out["sql"])
    assert first.returncode == 0, first.stderr
    # `db migrate` ran meanwhile on another copy of the script's targets: the guard skips each one
    twice = _psql(pg_url, out["sql"])
    assert twice.returncode == 0, twice.stderr
    assert twice.stderr.count("is already applied, skipped") == len(versions)

    assert _elfctl(project, second_db, "db", "migrate").returncode == 0
    assert dump(pg_url) == dump(second_db)


def test_print_sql_refuses_dry_run_and_unknown_versions(project, pg_url):
    res = _elfctl(project, pg_url, "db", "migrate", "--print-sql", "--dry-run")
    assert res.returncode == 2 and "--print-sql and --dry-run: choose one" in res.stderr
    res = _elfctl(project, pg_url, "db", "migrate", "--print-sql", "--to", "7777")
    assert res.returncode == 2 and "--to 7777: no migration with that version" in res.stderr
    assert "Traceback" not in res.stderr and _public_tables(pg_url) == []


def test_print_sql_stops_at_an_edited_applied_file(project, pg_url, tmp_path):
    import shutil

    from elfctl.bootstrap import migrations_dir
    from elfctl.config import load

    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(load(cwd=project)), folder)
    env = {"ELFCTL_STORE_URL": pg_url, "ELFCTL_STORE_MIGRATIONS_DIR": str(folder)}
    assert run_elfctl("db", "migrate", "--to", "40", cwd=project, env=env).returncode == 0
    edited = folder / "0040_credential_audit_chain.sql"
    edited.write_text(edited.read_text() + "\n-- edited\n")
    res = run_elfctl("db", "migrate", "--print-sql", cwd=project, env=env)
    assert res.returncode == 1 and "was edited after it ran" in res.stderr and res.stdout == ""


def test_migrate_tells_postgrest_to_reload(project, pg_url):
    """PostgREST LISTENs on channel pgrst; `db migrate` must send it 'reload schema'."""
    with psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute("LISTEN pgrst")
        assert _elfctl(project, pg_url, "db", "migrate").returncode == 0
        assert _notified(listener) == ["reload schema"]
        # also when nothing was pending: an earlier run may have died before it sent it
        assert _elfctl(project, pg_url, "db", "migrate").returncode == 0
        assert _notified(listener) == ["reload schema"]
        assert _elfctl(project, pg_url, "db", "migrate", "--dry-run").returncode == 0
        assert _notified(listener, wait_s=0.5) == []  # a dry run changes nothing and says nothing


def _notified(conn, wait_s: float = 10) -> list[str]:
    """The payload of the first pgrst notification within `wait_s`, if any."""
    return [n.payload for n in conn.notifies(timeout=wait_s, stop_after=1) if n.channel == "pgrst"]


def test_a_migration_quoting_the_scripts_own_tags_still_applies(project, pg_url, tmp_path):
    """Each statement travels inside a dollar quote: text that contains the script's own tags (or
    $$ bodies, quotes, semicolons) picks longer tags instead of ending the quote early."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_tricky.sql").write_text(
        "CREATE TABLE tricky (a text DEFAULT 'x $elfctl_stmt$ y $elfctl_migration$ z; ''q''');\n"
        "CREATE FUNCTION tricky_fn() RETURNS text LANGUAGE sql AS $$ SELECT 'a;b $elfctl_stmtx$' $$;\n"
        "INSERT INTO tricky DEFAULT VALUES;\n")
    env = {"ELFCTL_STORE_URL": pg_url, "ELFCTL_STORE_MIGRATIONS_DIR": str(folder)}
    res = run_elfctl("db", "migrate", "--print-sql", cwd=project, env=env)
    assert res.returncode == 0, res.stderr
    applied = _psql(pg_url, res.stdout)
    assert applied.returncode == 0, applied.stderr
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT a FROM tricky").fetchone()[0] == "x $elfctl_stmt$ y $elfctl_migration$ z; 'q'"
        assert conn.execute("SELECT tricky_fn()").fetchone()[0] == "a;b $elfctl_stmtx$"
    status = json.loads(run_elfctl("db", "status", "--json", cwd=project, env=env).stdout)
    assert status["pending"] == 0 and status["migrations"][0]["state"] == "applied"
