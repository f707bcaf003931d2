"""Fixtures of the Supabase tests: a database shaped like a Supabase project's (tests/supabase_db.py)."""

from __future__ import annotations

import pytest

from tests import supabase_db


@pytest.fixture(scope="session")
def _supa_template(pg_dsn, tmp_path_factory):
    name = supabase_db.make_template(pg_dsn, cwd=str(tmp_path_factory.mktemp("supa-template")))
    yield name
    supabase_db.drop(pg_dsn, name)


@pytest.fixture
def supa_pg_url(pg_dsn, _supa_template, project):
    """A fresh test database with Supabase's API roles and default grants, migrated by `elfctl db migrate`
    (cloned from a session template that was made that way)."""
    url = supabase_db.clone(pg_dsn, _supa_template)
    yield url
    supabase_db.drop(pg_dsn, url.rsplit("/", 1)[1])


@pytest.fixture
def rest(supa_pg_url):
    """A PostgREST-compatible server over the Supabase-shaped database (tests/postgrest_server.py)."""
    from tests.postgrest_server import PostgrestServer

    server = PostgrestServer(supa_pg_url, service_key=jwt_like("service_role"), anon_key=jwt_like("anon")).start()
    server.service_key, server.anon_key = (next(k for k, r in server.keys.items() if r == role)
                                           for role in ("service_role", "anon"))
    yield server
    server.stop()


@pytest.fixture
def rest_store(rest):
    """The REST store (RestStore) on the test server, as service_role."""
    from elfctl.adapters.supabase_rest import RestStore

    store = RestStore(rest.url, rest.service_key)
    yield store
    store.close()


@pytest.fixture
def db(supa_pg_url):
    """The database behind the REST API, read (and seeded) directly."""
    from elfctl.adapters.postgres import PostgresStore

    store = PostgresStore(supa_pg_url)
    yield store
    store.close()


def jwt_like(role: str) -> str:
    """A key shaped like Supabase's legacy API keys (a JWT whose payload names the role), random each time."""
    import base64
    import json
    import secrets

    def part(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return ".".join((part({"alg": "HS256", "typ": "JWT"}), part({"iss": "supabase", "role": role,
                                                                "ref": secrets.token_hex(4)}), secrets.token_urlsafe(32)))
