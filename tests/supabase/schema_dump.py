"""What a database's schema is, as comparable data: tables and columns, constraints, indexes, views,
functions (body, security definer, search_path, who may execute), row level security and grants.
Two databases migrated two ways must dump the same."""

from __future__ import annotations

import psycopg

QUERIES = {
    "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default FROM "
               "information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
    "constraints": "SELECT c.conrelid::regclass::text AS tbl, c.conname, pg_get_constraintdef(c.oid) AS def "
                   "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                   "WHERE n.nspname = 'public' ORDER BY 1, 2",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
    "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
    "functions": "SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args, pg_get_functiondef(p.oid) AS def, "
                 "p.prosecdef, p.proconfig, p.proacl::text AS acl FROM pg_proc p JOIN pg_namespace n "
                 "ON n.oid = p.pronamespace WHERE n.nspname = 'public' ORDER BY 1, 2",
    "tables": "SELECT c.relname, c.relkind, c.relrowsecurity, c.relacl::text AS acl FROM pg_class c "
              "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
              "AND c.relkind IN ('r', 'v', 'S', 'm') ORDER BY 1",
    "triggers": "SELECT tgrelid::regclass::text AS tbl, tgname, pg_get_triggerdef(oid) AS def FROM pg_trigger "
                "WHERE NOT tgisinternal ORDER BY 1, 2",
    "history": "SELECT version, name, file, checksum, checksum_algo FROM schema_migrations ORDER BY version",
}


def dump(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in QUERIES.items()}
