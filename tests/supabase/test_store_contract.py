"""One contract, three stores: `Rows.select` / `Rows.upsert` mean the same on SQLite, Postgres and
Supabase's REST API (the supabase client against the PostgREST-compatible server), and
`Functions.call` the same on Postgres and REST. Each assertion runs on every store, so a store
cannot drift from the others. The tables are elfctl's own (registry_entries, registry_capabilities,
gateway_keys), migrated the usual way."""

from __future__ import annotations

import pytest

from elfctl.errors import ElfError, StoreNotMigrated

ENTRY = {"name": "svc-a", "kind": "service", "url": "http://a:1", "owner": "team-a", "ttl_s": 30.0,
         "heartbeat_at": "2026-01-01T00:00:00+00:00", "registered_at": "2026-01-01T00:00:00+00:00"}


def _open(kind, request, project, open_store):
    from elfctl import config
    from elfctl.bootstrap import migrations_dir
    from elfctl.services.platform import migrate

    if kind == "sqlite":
        s = open_store(f"sqlite:///{project / '.elf' / 'elf.db'}")
        migrate.migrate(s, migrations_dir(config.load(cwd=project)))
        return s
    url = request.getfixturevalue("supa_pg_url")
    if kind == "postgres":
        return open_store(url)
    rest = request.getfixturevalue("rest")
    from elfctl.adapters.supabase_rest import RestStore

    s = RestStore(rest.url, rest.service_key, timeout_s=10)
    request.addfinalizer(s.close)
    return s


@pytest.fixture(params=["sqlite", "postgres", "rest"])
def store(request, project, open_store):
    return _open(request.param, request, project, open_store)


@pytest.fixture(params=["postgres", "rest"])
def functions_store(request, project, open_store):
    """SQLite runs no database functions (services keep their SQL there): not a store of `call`."""
    return _open(request.param, request, project, open_store)


def entries(store, **where):
    return [r["name"] for r in store.select("registry_entries", where or None, columns="name", order="name")]


def test_upsert_inserts_then_merges_only_the_given_columns(store):
    store.upsert("registry_entries", [ENTRY, {**ENTRY, "name": "svc-b", "owner": None}], on_conflict="name")
    store.upsert("registry_entries", [{"name": "svc-a", "kind": "service", "note": "moved", "url": "http://a:2",
                                       "heartbeat_at": "x", "registered_at": "y"}], on_conflict="name")
    row = store.select("registry_entries", {"name": "svc-a"}, columns="name,url,note,owner,ttl_s")[0]
    assert row == {"name": "svc-a", "url": "http://a:2", "note": "moved", "owner": "team-a", "ttl_s": 30}


def test_ignore_duplicates_keeps_the_stored_row(store):
    store.upsert("registry_entries", [ENTRY], on_conflict="name")
    store.upsert("registry_entries", [{**ENTRY, "url": "http://other"}, {**ENTRY, "name": "svc-c"}],
                 on_conflict="name", ignore_duplicates=True)
    assert store.select("registry_entries", {"name": "svc-a"}, columns="url") == [{"url": "http://a:1"}]
    assert entries(store) == ["svc-a", "svc-c"]


def test_a_composite_conflict_key_and_an_empty_upsert(store):
    rows = [{"capability": "search", "name": "svc-a"}, {"capability": "chat", "name": "svc-a"}]
    store.upsert("registry_capabilities", rows, on_conflict="capability,name")
    store.upsert("registry_capabilities", rows, on_conflict="capability,name")  # the same again: no error
    store.upsert("registry_capabilities", [], on_conflict="capability,name")
    assert store.select("registry_capabilities", columns="capability", order="capability") == [
        {"capability": "chat"}, {"capability": "search"}]


def test_select_filters_equality_null_and_lists_orders_and_limits(store):
    store.upsert("registry_entries", [{**ENTRY, "name": n, "owner": o, "kind": k} for n, o, k in (
        ("a1", "x", "team"), ("a2", None, "team"), ("a3", "y", "agent"), ("a4", "x", "service"))],
        on_conflict="name")
    assert entries(store, owner="x") == ["a1", "a4"]
    assert entries(store, owner=None) == ["a2"]
    assert entries(store, kind=["team", "agent"]) == ["a1", "a2", "a3"]
    assert entries(store, kind=[]) == []
    assert entries(store, owner="x", kind="team") == ["a1"]
    assert entries(store, owner="it's; DROP TABLE registry_entries") == []  # a value, never SQL
    desc = store.select("registry_entries", columns="name", order="kind.desc,name.asc", limit=2)
    assert [r["name"] for r in desc] == ["a1", "a2"]
    assert store.select("registry_entries", {"name": "nobody"}) == []


def test_select_star_gives_every_column(store):
    store.upsert("registry_entries", [ENTRY], on_conflict="name")
    row = store.select("registry_entries", {"name": "svc-a"})[0]
    assert {"name", "kind", "url", "endpoints", "capabilities", "last_status"} <= set(row)
    assert row["endpoints"] == "{}" and row["check_status"] == "passing"  # the columns' defaults


def test_a_missing_relation_is_store_not_migrated(store):
    with pytest.raises(StoreNotMigrated):
        store.select("no_such_relation")


@pytest.mark.parametrize("bad", ["registry_entries; DROP", "Registry", "a b", ""])
def test_names_that_are_not_identifiers_are_refused(store, bad):
    with pytest.raises(ElfError):
        store.select(bad)
    with pytest.raises(ElfError):
        store.select("registry_entries", {bad: 1})
    with pytest.raises(ElfError):
        store.upsert("registry_entries", [{bad: 1}], on_conflict="name")
    assert entries(store) == []


def test_call_returns_jsonb_scalars_and_null_alike(functions_store):
    s = functions_store
    s.upsert("registry_entries", [ENTRY], on_conflict="name")
    before = s.call("elfctl_heartbeat", {"p_name": "svc-a", "p_status": "warning", "p_note": "slow",
                                         "p_at": "2026-01-01T00:01:00+00:00"})
    assert before["name"] == "svc-a" and before["check_status"] == "passing"
    assert s.select("registry_entries", {"name": "svc-a"}, columns="check_status,note") == [
        {"check_status": "warning", "note": "slow"}]
    assert s.call("elfctl_heartbeat", {"p_name": "nobody", "p_status": "passing", "p_note": "",
                                       "p_at": "2026-01-01T00:01:00+00:00"}) is None
    assert s.call("elfctl_key_lookup", {"p_prefix": "nope"}) is None
    assert s.call("elfctl_settle", {"p_ids": ["r-1", "r-2"]}) == 0  # a text[] argument, an integer result


def test_a_void_function_returns_none(functions_store):
    assert functions_store.call("elfctl_key_touch", {"p_prefix": "nope", "p_at": "2026-01-01"}) is None


def test_a_missing_function_is_store_not_migrated(functions_store):
    with pytest.raises(StoreNotMigrated):
        functions_store.call("elfctl_not_there", {"p_x": 1})


def test_call_refuses_names_that_are_not_identifiers(functions_store):
    with pytest.raises((ElfError, ValueError)):
        functions_store.call("elfctl_settle; DROP", {})
    with pytest.raises((ElfError, ValueError)):
        functions_store.call("elfctl_settle", {"p ids": []})
