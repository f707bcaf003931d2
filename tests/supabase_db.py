"""A test database that looks like a Supabase project's: its roles, its default grants, elfctl's schema.

Supabase's Postgres has three API roles that PostgREST switches to per request: `anon` (no key or the
anon key), `authenticated` (a user's JWT) and `service_role` (the service key, BYPASSRLS). Its default
privileges grant every new table, sequence and function in `public` to all three, functions to `anon`
included: that is why elfctl's migrations revoke `execute` on their functions from `anon` and
`authenticated`. `supabase_database(url)` gives a fresh test database (conftest's `pg_url`) those roles
and grants, THEN runs `elfctl db migrate` on it, so the grants the migrations change are the real ones.

Roles are per cluster, databases per test: the roles are created once if missing (several tests, or
helpers, may race to create them: a duplicate is fine), the grants are made in each fresh database.
"""

from __future__ import annotations

import os
import subprocess
import sys

# The API roles as Supabase declares them (supabase/postgres: migrations/db/init-scripts/00000000000000-initial-schema.sql).
ROLES = {
    "anon": "NOLOGIN NOINHERIT",
    "authenticated": "NOLOGIN NOINHERIT",
    "service_role": "NOLOGIN NOINHERIT BYPASSRLS",
}
API_ROLES = ", ".join(ROLES)


def create_roles(url: str) -> None:
    """Create the API roles if the cluster lacks them and let the connecting (test) user SET ROLE to each."""
    import psycopg
    from psycopg import errors

    with psycopg.connect(url, autocommit=True) as conn:
        user = conn.execute("SELECT current_user").fetchone()[0]
        for role, options in ROLES.items():
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                continue
            try:
                conn.execute(f"CREATE ROLE {role} {options}")
            except (errors.DuplicateObject, errors.UniqueViolation):
                pass  # another test created it between our check and our CREATE
        try:
            conn.execute(f'GRANT {API_ROLES} TO "{user}"')
        except errors.UniqueViolation:
            pass  # a concurrent GRANT of the same membership (pg_auth_members' unique index)


def grant_defaults(url: str) -> None:
    """Supabase's default privileges in `public`, in this database (they are per database)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {API_ROLES}")
        for kind in ("TABLES", "SEQUENCES", "FUNCTIONS"):
            conn.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON {kind} TO {API_ROLES}")


def migrate(url: str, cwd: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`elfctl db migrate` on url, in a subprocess as a user runs it; raises with its output on failure."""
    env = {**os.environ, "ELFCTL_STORE_URL": url, "NO_COLOR": "1"}
    for var in ("SUPABASE_URL", "SUPABASE_KEY", "SUPABASE_DB_URL"):
        env.pop(var, None)  # the database URL given here is the one migrated
    run = subprocess.run([sys.executable, "-m", "elfctl", "db", "migrate"], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=timeout)
    if run.returncode != 0:
        raise RuntimeError(f"elfctl db migrate failed (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")
    return run


def supabase_database(url: str, cwd: str | None = None, migrated: bool = True) -> str:
    """Make the fresh database at url look like a Supabase project's, then migrate it. Returns url."""
    create_roles(url)
    grant_defaults(url)
    if migrated:
        migrate(url, cwd=cwd)
    return url


def clone(admin_dsn: str, template: str) -> str:
    """A fresh database copied from `template` (CREATE DATABASE ... TEMPLATE: roles' grants, default
    privileges and the migrated schema come along) in about 0.1 s instead of a migrate run. Returns its URL."""
    import uuid

    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return admin_dsn.rsplit("/", 1)[0] + "/" + name


def make_template(admin_dsn: str, cwd: str | None = None) -> str:
    """A Supabase-shaped, migrated database to clone() from (made once per test session). Returns its name."""
    import uuid

    import psycopg

    name = "tmpl_supa_" + uuid.uuid4().hex[:8]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    supabase_database(admin_dsn.rsplit("/", 1)[0] + "/" + name, cwd=cwd)
    return name


def drop(admin_dsn: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
