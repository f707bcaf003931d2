"""The ledger's atomic operations over Supabase's REST API: `rpc` into the database functions of
migration 0110 through the official supabase client (RestStore), against the PostgREST-compatible test
server over the real Postgres, each request running as service_role."""

from __future__ import annotations

import datetime as dt
import os

import httpx
import pytest

from elfctl.adapters.postgres import PostgresStore
from elfctl.domain.budget import Budget
from elfctl.domain.clock import iso
from elfctl.domain.usage import UsageRow
from elfctl.services.cost import budgets, ledger
from tests.llm.conftest import FAST
from tests.llm.test_concurrency import eight_processes_within_the_bound
from tests.supabase.test_store_functions import fifty_reservations_at_once


@pytest.fixture
def rest_store(rest):
    """Open RestStores with the service key; closed at teardown."""
    from elfctl.adapters.supabase_rest import RestStore

    opened: list[RestStore] = []

    def open_one() -> RestStore:
        s = RestStore(rest.url, rest.service_key)
        opened.append(s)
        return s

    yield open_one
    for s in opened:
        s.close()


@pytest.fixture
def db(supa_pg_url):
    """The database behind the REST API, read directly to check what the calls did."""
    store = PostgresStore(supa_pg_url)
    yield store
    store.close()


def test_reserve_record_settle_and_expire_over_rpc(rest_store, db):
    store = rest_store()
    b = Budget("alpha", daily_nanousd=1000)
    res = budgets.reserve(store, b, 600, 60)
    assert [(s.window, s.reserved) for s in res.states] == [("day", 600), ("month", 600)]
    with pytest.raises(budgets.Refused) as refused:
        budgets.reserve(store, b, 600, 60)
    assert (refused.value.state.window, refused.value.state.reserved) == ("day", 600)
    row = UsageRow("req-1", iso(dt.datetime.now(dt.UTC)), "alpha", "m", "m", cost_nanousd=650, reservation_id=res.id)
    assert ledger.record(store, [row]) == 1
    assert ledger.record(store, [row]) == 0  # the spool's replay of a recorded row moves nothing
    day = db.query("SELECT spent_nanousd, reserved_nanousd FROM spend_counters WHERE window_kind = 'day'")[0]
    assert day == {"spent_nanousd": 650, "reserved_nanousd": 0}
    other = budgets.reserve(store, b, 300, 60)
    budgets.release(store, other.id)
    dead = budgets.reserve(store, b, 300, -1)  # already expired: its process "died"
    with db.transaction() as tx:
        assert budgets.expire_in(tx, dt.datetime.now(dt.UTC)) == 1
    assert db.query("SELECT count(*) AS n FROM budget_reservations")[0]["n"] == 0 and dead.id
    assert db.query("SELECT reserved_nanousd FROM spend_counters WHERE window_kind = 'day'")[0] == {
        "reserved_nanousd": 0}


def test_fifty_concurrent_rpc_reservations_never_overspend(rest_store, db):
    fifty_reservations_at_once([rest_store() for _ in range(50)], db)  # 50 clients, 50 rpc calls at once


def test_the_anon_key_cannot_call_the_functions_over_rest(rest, db):
    body = {"p_id": "r1", "p_team": "alpha", "p_amount": 10, "p_day": "2026-01-01", "p_month": "2026-01-01",
            "p_day_limit": 100, "p_month_limit": None, "p_force": False,
            "p_now": "2026-01-01T00:00:00.000+00:00", "p_expires_at": "2026-01-01T00:01:00.000+00:00"}
    for key, status in ((rest.anon_key, 401), (rest.service_key, 200)):
        r = httpx.post(rest.url + "/rest/v1/rpc/elfctl_reserve", json=body, timeout=10,
                       headers={"apikey": key, "Authorization": f"Bearer {key}"})
        assert r.status_code == status, r.text
        if status == 401:
            assert r.json()["code"] == "42501" and "permission denied for function elfctl_reserve" in r.json()["message"]
    assert db.query("SELECT count(*) AS n FROM budget_reservations")[0]["n"] == 1  # the service key's only


@pytest.fixture
def rest_llm_env(rest, supa_pg_url, project, monkeypatch, llm_server, db):
    """elfctl.llm in this project with only SUPABASE_URL and SUPABASE_KEY set: the store is the REST API."""
    from elfctl import llm

    with open(project / "elfctl.toml", "a") as f:
        f.write(FAST)
    monkeypatch.setenv("SUPABASE_URL", rest.url)
    monkeypatch.setenv("SUPABASE_KEY", rest.service_key)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-" + os.urandom(4).hex())
    llm.reset()
    yield project, db
    llm.reset()


def test_eight_processes_through_rest_stay_within_the_bound(rest_llm_env, llm_server):
    eight_processes_within_the_bound(*rest_llm_env, llm_server)


def test_heartbeat_key_lookup_and_a_breakers_transitions_over_rpc(rest_store, db):
    import pybreaker

    from elfctl.domain.registry import Entry
    from elfctl.resilience import breaker
    from elfctl.services.gateway import keys
    from elfctl.services.registry import entries

    store = rest_store()
    # registry: a heartbeat moves the entry; an unknown name is NotRegistered (nothing created)
    entries.register(db, Entry(name="search", url="http://127.0.0.1:9/"))
    beat = entries.heartbeat(store, "search", "warn", "slow")
    assert (beat.status, beat.reason) == ("warning", "slow")
    assert db.query("SELECT check_status, note, last_status FROM registry_entries WHERE name = 'search'") == [
        {"check_status": "warning", "note": "slow", "last_status": "warning"}]
    with pytest.raises(entries.NotRegistered):
        entries.heartbeat(store, "nobody", "pass")
    # gateway keys: the key minted through SQL is found through rpc; a revoked or made-up one is not
    raw = keys.mint(db, "alpha", revision=3)
    auth = keys.Authenticator(store, ttl_s=0)
    assert (auth.lookup(raw).team, auth.lookup(raw).revision) == ("alpha", 3)
    assert db.query("SELECT last_used_at FROM gateway_keys")[0]["last_used_at"] is not None  # touched
    assert auth.lookup(raw[:-1] + ("0" if raw[-1] != "0" else "1")) is None
    keys.revoke(db, keys.split(raw))
    assert auth.lookup(raw) is None
    # a shared breaker: two failures open it for every process; after the reset time one probe closes it
    cb = breaker.make(store, "llm:test-model", fail_max=2, reset_timeout_s=60)

    def boom():
        raise RuntimeError("provider down")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            breaker.guarded(cb, boom)
    with pytest.raises(breaker.CircuitOpen):
        breaker.guarded(cb, lambda: "never called")
    assert db.query("SELECT state, fail_counter FROM breaker_state WHERE name = 'llm:test-model'") == [
        {"state": pybreaker.STATE_OPEN, "fail_counter": 2}]
    db.execute("UPDATE breaker_state SET opened_at = '2000-01-01T00:00:00.000+00:00' WHERE name = 'llm:test-model'")
    other = breaker.make(rest_store(), "llm:test-model", fail_max=2, reset_timeout_s=60)
    assert other._state_storage.take_probe(60, 30) is True  # one process wins the probe slot ...
    assert cb._state_storage.take_probe(60, 30) is False  # ... the other does not
    db.execute("UPDATE breaker_state SET probe_until = '2000-01-01T00:00:00.000+00:00' WHERE name = 'llm:test-model'")
    assert breaker.guarded(cb, lambda: "ok") == "ok"
    assert db.query("SELECT state, fail_counter FROM breaker_state WHERE name = 'llm:test-model'") == [
        {"state": pybreaker.STATE_CLOSED, "fail_counter": 0}]
