"""The PostgREST-compatible test server answers the supabase client as PostgREST does: these tests pin
the behaviour the adapter's tests rely on (filters, upserts, rpc, keys, roles, errors, schema cache)."""

from __future__ import annotations

import httpx
import psycopg
import pytest


@pytest.fixture
def things(rest, supa_pg_url):
    with psycopg.connect(supa_pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.things (id int PRIMARY KEY, name text UNIQUE, n bigint, note text, "
                     "at timestamptz DEFAULT '2026-01-02T03:04:05Z')")
        conn.execute("INSERT INTO public.things (id, name, n, note) VALUES (1, 'a', 10, NULL), (2, 'b', 20, 'x'), "
                     "(3, 'c,d', 30, 'y'), (4, 'e', 9007199254740993, NULL)")
        conn.execute("NOTIFY pgrst, 'reload schema'")
    return rest


def client(rest, key=None):
    from supabase import ClientOptions, create_client

    return create_client(rest.url, key or rest.service_key, ClientOptions(postgrest_client_retry=False))


def raw(rest, method, path, key=None, **kw):
    key = key or rest.service_key
    headers = {"apikey": key, "Authorization": f"Bearer {key}", **kw.pop("headers", {})}
    return httpx.request(method, rest.url + path, headers=headers, timeout=10, **kw)


def test_filters_order_limit_offset_and_postgres_json_types(things):
    t = client(things).table("things")
    assert [r["id"] for r in t.select("id").gte("n", 20).order("id", desc=True).execute().data] == [4, 3, 2]
    assert t.select("id,name").in_("name", ["a", "c,d"]).order("id").execute().data == [
        {"id": 1, "name": "a"}, {"id": 3, "name": "c,d"}]
    assert [r["id"] for r in t.select("id").is_("note", "null").order("id").execute().data] == [1, 4]
    assert [r["id"] for r in t.select("id").neq("id", 1).lt("id", 4).order("id").limit(1).offset(1)
            .execute().data] == [3]
    row = t.select("*").eq("id", 4).execute().data[0]
    assert row["n"] == 9007199254740993 and row["at"] == "2026-01-02T03:04:05+00:00"  # Postgres's own JSON


def test_count_exact_and_content_range(things):
    r = raw(things, "GET", "/rest/v1/things?select=id&id=gt.1&limit=2", headers={"Prefer": "count=exact"})
    assert r.status_code == 200 and r.headers["Content-Range"] == "0-1/3"
    assert client(things).table("things").select("id", count="exact").eq("id", 99).execute().count == 0


def test_a_single_object_is_406_pgrst116_unless_exactly_one_row(things):
    from postgrest.exceptions import APIError

    t = client(things).table("things")
    assert t.select("name").eq("id", 2).single().execute().data == {"name": "b"}
    with pytest.raises(APIError) as exc:
        t.select("name").gt("id", 1).single().execute()
    assert exc.value.code == "PGRST116" and "3 rows" in exc.value.details


def test_upsert_merges_or_ignores_duplicates_and_a_plain_insert_conflict_is_409(things):
    from postgrest.exceptions import APIError

    t = client(things).table("things")
    out = t.upsert([{"id": 2, "name": "b2", "n": 21}, {"id": 5, "name": "f", "n": 50}], on_conflict="id").execute()
    assert sorted((r["id"], r["name"]) for r in out.data) == [(2, "b2"), (5, "f")]
    kept = t.upsert({"id": 1, "name": "zzz", "n": 0}, on_conflict="id", ignore_duplicates=True).execute()
    assert kept.data == [] and t.select("name").eq("id", 1).execute().data == [{"name": "a"}]
    with pytest.raises(APIError) as exc:
        t.insert({"id": 6, "name": "a"}).execute()
    assert exc.value.code == "23505" and "duplicate key" in exc.value.message
    r = raw(things, "POST", "/rest/v1/things", json={"id": 6, "name": "a"})
    assert r.status_code == 409 and set(r.json()) == {"code", "details", "hint", "message"}


def test_return_minimal_has_no_body(things):
    r = raw(things, "POST", "/rest/v1/things?columns=id,name", json=[{"id": 7, "name": "g"}],
            headers={"Prefer": "return=minimal,count=exact"})
    assert (r.status_code, r.content, r.headers["Content-Range"]) == (201, b"", "*/1")


def test_rpc_named_args_and_the_schema_cache_reload(things, supa_pg_url):
    from postgrest.exceptions import APIError

    c = client(things)
    with psycopg.connect(supa_pg_url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION public.t_add(a int, b int DEFAULT 1) RETURNS int LANGUAGE sql "
                     "AS 'SELECT a + b'")
    with pytest.raises(APIError) as exc:  # created without a reload: not in the schema cache yet
        c.rpc("t_add", {"a": 2}).execute()
    assert exc.value.code == "PGRST202"
    with psycopg.connect(supa_pg_url, autocommit=True) as conn:
        conn.execute("NOTIFY pgrst, 'reload schema'")
    assert _once_reloaded(lambda: c.rpc("t_add", {"a": 2}).execute().data) == 3
    assert c.rpc("t_add", {"a": 2, "b": 5}).execute().data == 7
    with pytest.raises(APIError) as exc:
        c.rpc("t_add", {"zz": 1}).execute()
    assert exc.value.code == "PGRST202" and "t_add(zz)" in exc.value.message


def _once_reloaded(call, limit_s: float = 15.0):
    """The call's answer once the server has taken the NOTIFY: like PostgREST, it reloads its schema
    cache on its listener's connection, a moment after the NOTIFY commits (longer on a loaded machine)."""
    import time

    from postgrest.exceptions import APIError

    deadline = time.monotonic() + limit_s
    while True:
        try:
            return call()
        except APIError as exc:
            if exc.code != "PGRST202" or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_rpc_returns_jsonb_sets_and_void_and_a_raise_is_400(things, supa_pg_url):
    from postgrest.exceptions import APIError

    with psycopg.connect(supa_pg_url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION public.t_doc(k text, v jsonb) RETURNS jsonb LANGUAGE sql "
                     "AS $$ SELECT jsonb_build_object(k, v) $$")
        conn.execute("CREATE FUNCTION public.t_rows(lo int) RETURNS SETOF public.things LANGUAGE sql "
                     "AS 'SELECT * FROM public.things WHERE id >= lo ORDER BY id'")
        conn.execute("CREATE FUNCTION public.t_void() RETURNS void LANGUAGE sql AS 'SELECT'")
        conn.execute("CREATE FUNCTION public.t_fail() RETURNS int LANGUAGE plpgsql "
                     "AS $$ BEGIN RAISE EXCEPTION 'no budget' USING HINT = 'raise it'; END $$")
        conn.execute("NOTIFY pgrst")
    c = client(things)
    assert _once_reloaded(lambda: c.rpc("t_doc", {"k": "x", "v": {"a": [1, 2]}}).execute().data) == {"x": {"a": [1, 2]}}
    assert [r["id"] for r in c.rpc("t_rows", {"lo": 3}).execute().data] == [3, 4]
    assert raw(things, "POST", "/rest/v1/rpc/t_void", json={}).status_code == 204
    with pytest.raises(APIError) as exc:
        c.rpc("t_fail", {}).execute()
    assert (exc.value.code, exc.value.message, exc.value.hint) == ("P0001", "no budget", "raise it")
    assert raw(things, "POST", "/rest/v1/rpc/t_fail", json={}).status_code == 400


def test_a_wrong_key_is_401_and_no_key_too(things):
    r = raw(things, "GET", "/rest/v1/things?select=id", key="not-the-key")
    assert r.status_code == 401 and r.json()["code"] == "PGRST301"
    assert httpx.get(things.url + "/rest/v1/things").status_code == 401


def test_the_anon_key_runs_as_anon_so_grants_and_row_level_security_bind(things, supa_pg_url):
    with psycopg.connect(supa_pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE public.things ENABLE ROW LEVEL SECURITY")
        conn.execute("CREATE TABLE public.secret (x int)")
        conn.execute("REVOKE ALL ON public.secret FROM anon")
        conn.execute("NOTIFY pgrst")
    # RLS without policies: anon sees nothing, service_role (BYPASSRLS) everything
    assert raw(things, "GET", "/rest/v1/things?select=id", key=things.anon_key).json() == []
    assert len(raw(things, "GET", "/rest/v1/things?select=id").json()) == 4
    denied = raw(things, "GET", "/rest/v1/secret?select=x", key=things.anon_key)
    assert denied.status_code == 401 and denied.json()["code"] == "42501"  # anon: 401, not 403
    with psycopg.connect(supa_pg_url, autocommit=True) as conn:
        conn.execute("REVOKE ALL ON public.secret FROM service_role")
    assert raw(things, "GET", "/rest/v1/secret?select=x").status_code == 403


def test_unknown_relation_schema_and_bad_grammar(things):
    r = raw(things, "GET", "/rest/v1/nope?select=*")
    assert (r.status_code, r.json()["code"]) == (404, "PGRST205")
    r = raw(things, "GET", "/rest/v1/things?select=*", headers={"Accept-Profile": "private"})
    assert (r.status_code, r.json()["code"]) == (406, "PGRST106")
    r = raw(things, "GET", '/rest/v1/things?select=*&id=like.1')
    assert (r.status_code, r.json()["code"]) == (400, "PGRST100")
    r = raw(things, "GET", '/rest/v1/things?select=id;drop table things')
    assert r.status_code == 400
    r = raw(things, "GET", "/rest/v1/things?select=id&name=eq.a'; DROP TABLE things; --")
    assert r.status_code == 200 and r.json() == []  # a value is a parameter, never SQL
    assert raw(things, "GET", "/rest/v1/things?select=id").status_code == 200
