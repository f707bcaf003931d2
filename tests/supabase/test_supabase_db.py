"""The Supabase-shaped test database: the roles PostgREST switches to exist and have Supabase's grants."""

from __future__ import annotations

import psycopg


def test_the_api_roles_exist_with_supabases_attributes_and_the_test_user_can_become_them(supa_pg_url):
    with psycopg.connect(supa_pg_url, autocommit=True) as conn:
        roles = {name: tuple(flags) for name, *flags in conn.execute(
            "SELECT rolname, rolbypassrls, rolcanlogin, rolinherit FROM pg_roles "
            "WHERE rolname IN ('anon', 'authenticated', 'service_role')").fetchall()}
        assert roles == {"anon": (False, False, False), "authenticated": (False, False, False),
                         "service_role": (True, False, False)}
        for role in roles:
            conn.execute(f"SET ROLE {role}")
            assert conn.execute("SELECT current_user").fetchone()[0] == role
            conn.execute("RESET ROLE")


def test_migrated_tables_are_granted_to_the_api_roles_by_default_as_on_supabase(supa_pg_url):
    with psycopg.connect(supa_pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] > 0
        for role in ("anon", "authenticated", "service_role"):
            assert conn.execute("SELECT has_table_privilege(%s, 'public.schema_migrations', 'SELECT')",
                                (role,)).fetchone()[0], role
