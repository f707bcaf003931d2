"""RestStore: the store over Supabase's REST API, through the real supabase client against the
PostgREST-compatible server over real Postgres. What a user sees: exit codes, one-line errors naming
the setting, bounded waits, and never the key."""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from elfctl.errors import Conflict, InputError, StoreNotMigrated, Unreachable
from tests.conftest import run_elfctl


@pytest.fixture
def store(rest):
    from elfctl.adapters.supabase_rest import RestStore

    s = RestStore(rest.url, rest.service_key, timeout_s=5)
    yield s
    s.close()


def rest_env(rest, key=None) -> dict:
    return {"SUPABASE_URL": rest.url, "SUPABASE_KEY": key or rest.service_key}


@pytest.mark.parametrize("url", ["http://db.example.com", "ftp://127.0.0.1", "example.supabase.co"])
def test_only_https_or_loopback_http_is_accepted(url, project):
    proc = run_elfctl("registry", "list", cwd=project, env={"SUPABASE_URL": url, "SUPABASE_KEY": "sk-test-12345"})
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == f"error: SUPABASE_URL {url!r} is not an https:// URL: the service key " \
                                          "must not travel in clear text"
    assert "Traceback" not in proc.stderr and "sk-test-12345" not in proc.stderr + proc.stdout


def test_a_wrong_key_is_exit_2_naming_supabase_key_and_never_shown(rest, project):
    key = "sk-wrong-0123456789"
    proc = run_elfctl("registry", "list", "--json", cwd=project, env=rest_env(rest, key))
    err = json.loads(proc.stdout)["error"]
    assert proc.returncode == 2 and err["code"] == "unauthorized", proc.stdout
    assert err["message"].startswith(f"Supabase REST API at {rest.url} refused SUPABASE_KEY for a read of ")
    assert "401" in err["message"] and "service_role key" in err["hint"]
    assert key not in proc.stdout + proc.stderr


def test_the_anon_key_is_refused_before_any_request(rest, project):
    """Row level security hides every row from anon without an error: an empty registry would be a lie."""
    before = len(rest.requests)
    for key in (rest.anon_key, "sb_publishable_" + "x" * 30):
        proc = run_elfctl("registry", "list", "--json", cwd=project, env=rest_env(rest, key))
        err = json.loads(proc.stdout)["error"]
        assert proc.returncode == 2 and err["code"] == "unauthorized"
        assert err["message"] == "SUPABASE_KEY is the project's public (anon) key: elfctl needs the service_role key"
        assert key not in proc.stdout + proc.stderr
    assert len(rest.requests) == before


def test_the_key_appears_in_no_output_error_or_log(rest, project):
    env = {**rest_env(rest), "ELFCTL_LOG_LEVEL": "debug"}
    rest.behave(status=500)
    outs = [run_elfctl(*args, cwd=project, env=env) for args in (
        ("registry", "list"), ("registry", "list", "--json", "--debug"), ("db", "status"), ("config", "show"),
        ("config", "show", "--json"), ("db", "migrate"))]
    rest.behave()
    outs.append(run_elfctl("registry", "list", "--json", cwd=project, env=env))
    for proc in outs:
        assert rest.service_key not in proc.stdout + proc.stderr
    assert outs[-1].returncode == 0


def test_sql_has_no_rest_form_one_line_naming_supabase_db_url(rest, project):
    proc = run_elfctl("db", "migrate", cwd=project, env=rest_env(rest))
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == ("error: `elfctl db migrate` needs a database connection: set "
                                           "SUPABASE_DB_URL (the project's connection string, Settings > Database)")
    proc = run_elfctl("creds", "list", "--json", cwd=project, env=rest_env(rest))
    assert proc.returncode == 2 and "`elfctl creds list` needs a database connection" in proc.stdout


def test_a_5xx_is_unreachable_at_once_the_clients_get_retries_are_off(rest, store):
    rest.behave(status=503)
    before = len(rest.requests)
    started = time.monotonic()
    with pytest.raises(Unreachable) as exc:
        store.select("budgets")
    assert time.monotonic() - started < 5  # postgrest-py alone would sleep 1 + 2 + 4 s between 4 tries
    assert len(rest.requests) - before == 1
    assert exc.value.exit_code == 3 and "503" in exc.value.message


def test_a_dropped_connection_or_a_dead_server_is_unreachable_exit_3(rest, store, project):
    rest.behave(drop=True)
    with pytest.raises(Unreachable) as exc:
        store.upsert("registry_capabilities", [{"capability": "c", "name": "n"}], on_conflict="capability,name")
    assert "unreachable" in exc.value.message
    rest.behave()
    assert store.select("registry_capabilities") == []  # the write was never taken; the store still works
    url = rest.url
    rest.stop()
    proc = run_elfctl("registry", "list", "--json", cwd=project, env={"SUPABASE_URL": url,
                                                                      "SUPABASE_KEY": rest.service_key})
    assert proc.returncode == 3 and json.loads(proc.stdout)["error"]["code"] == "unreachable"
    assert "Traceback" not in proc.stderr


def test_a_page_that_is_not_postgrests_json_is_not_taken_for_rows(rest, store):
    rest.behave(html=True)
    with pytest.raises(Unreachable) as exc:
        store.select("registry_entries")
    assert "HTML page, not PostgREST" in exc.value.message and exc.value.exit_code == 3
    with pytest.raises(Unreachable):  # a write the page swallowed is not taken as done
        store.upsert("registry_capabilities", [{"capability": "c", "name": "n"}], on_conflict="capability,name")
    with pytest.raises(Unreachable):
        store.call("elfctl_key_lookup", {"p_prefix": "x"})
    rest.behave()


def test_a_hung_api_is_bounded_by_supabase_timeout_s(rest, project):
    rest.behave(stall=30)
    started = time.monotonic()
    proc = run_elfctl("registry", "list", "--json", cwd=project,
                      env={**rest_env(rest), "ELFCTL_SUPABASE_TIMEOUT_S": "0.5"})
    took = time.monotonic() - started
    rest.behave()
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "did not answer a read of registry_entries within 0.5s" in json.loads(proc.stdout)["error"]["message"]
    assert took < 20  # not the stall: the request was given up after 0.5 s


def test_an_unmigrated_project_says_how_to_migrate(rest, store):
    with pytest.raises(StoreNotMigrated) as exc:
        store.call("elfctl_nothing_here", {"a": 1})
    assert "PGRST202" not in exc.value.message and "public.elfctl_nothing_here(a)" in exc.value.message
    assert exc.value.hint == ("run elfctl db migrate (SUPABASE_DB_URL) or paste `elfctl db migrate --print-sql` "
                              "in the SQL editor")
    with pytest.raises(StoreNotMigrated):
        store.select("no_such_table")


def test_a_unique_violation_is_conflict(rest, store, supa_pg_url):
    with psycopg.connect(supa_pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.uniq (id int PRIMARY KEY, name text UNIQUE)")
        conn.execute("INSERT INTO public.uniq VALUES (1, 'a')")
        conn.execute("NOTIFY pgrst")
    with pytest.raises(Conflict) as exc:
        store.upsert("uniq", [{"id": 2, "name": "a"}], on_conflict="id")
    assert "duplicate key" in exc.value.message and exc.value.exit_code == 1


def test_bad_names_never_reach_the_api(rest, store):
    before = len(rest.requests)
    for bad in ("budgets;drop", "Budgets", "a,b", "x.y"):
        with pytest.raises(InputError):
            store.select(bad)
        with pytest.raises(InputError):
            store.select("budgets", {bad: 1})
        with pytest.raises(InputError):
            store.call(bad, {})
    with pytest.raises(InputError):
        store.select("budgets", order="team.sideways")
    assert len(rest.requests) == before


def test_tables_and_server_version_as_far_as_rest_allows(store):
    assert {"budgets", "schema_migrations", "registry_entries"} <= set(store.tables())
    assert store.server_version().startswith("Supabase REST (postgrest/")


def test_the_store_shown_is_the_store_opened(rest, project):
    """With SUPABASE_URL + SUPABASE_KEY, the commands really go to the REST API (the server saw them)."""
    env = {"SUPABASE_URL": rest.url, "SUPABASE_KEY": rest.service_key}
    before = len(rest.requests)
    proc = run_elfctl("registry", "list", "--json", cwd=project, env=env)
    assert proc.returncode == 0 and json.loads(proc.stdout) == []
    assert any(r["path"] == "/rest/v1/registry_entries" for r in rest.requests[before:])
    shown = json.loads(run_elfctl("config", "show", "--json", cwd=project, env=env).stdout)["store"]
    assert shown["dialect"] == "rest" and shown["url"] == rest.url
