"""The atomic operations as database functions (migration 0110) in a Supabase-shaped database: who may
call them and read the tables, that they never overspend under 50 concurrent reservations, and that the
ledger's time-zone windows computed in the database are Python's."""

from __future__ import annotations

import datetime as dt
import threading
import urllib.parse

import psycopg
import pytest
from psycopg import errors

from elfctl.adapters.postgres import PostgresStore
from elfctl.domain import budget as bmod
from elfctl.domain.budget import Budget
from elfctl.domain.clock import iso
from elfctl.domain.usage import UsageRow
from elfctl.services.cost import budgets, ledger

FUNCTIONS = ("elfctl_reserve", "elfctl_settle", "elfctl_expire", "elfctl_unreserve", "elfctl_record_usage",
             "elfctl_breaker_ensure", "elfctl_breaker_update", "elfctl_breaker_take_probe", "elfctl_heartbeat",
             "elfctl_key_lookup", "elfctl_key_touch", "elfctl_record_action", "elfctl_breaker_hold",
             "elfctl_recent_actions")  # + 0130
RESERVE_ARGS = ("p_id => 'r1', p_team => 'alpha', p_amount => 10, p_day => '2026-01-01', p_month => '2026-01-01', "
                "p_day_limit => 100, p_month_limit => NULL, p_force => false, p_now => '2026-01-01T00:00:00.000+00:00', "
                "p_expires_at => '2026-01-01T00:01:00.000+00:00'")


def as_role(url: str, role: str) -> str:
    """The URL of a session that runs as `role` from its start (libpq's options), as PostgREST's requests do."""
    sep = "&" if "?" in url else "?"
    return url + sep + "options=" + urllib.parse.quote(f"-c role={role}")


def test_every_function_is_security_definer_with_an_empty_search_path(supa_pg_url):
    with psycopg.connect(supa_pg_url, autocommit=True) as conn:
        rows = conn.execute("SELECT proname, prosecdef, proconfig FROM pg_proc WHERE pronamespace = "
                            "'public'::regnamespace AND proname LIKE 'elfctl%%' ORDER BY 1").fetchall()
    assert set(FUNCTIONS) <= {r[0] for r in rows}  # and every other elfctl_ function (0120's reports) alike
    for name, definer, config in rows:
        assert definer and config == ['search_path=""'], (name, definer, config)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_the_api_roles_cannot_call_the_functions_nor_read_the_tables(supa_pg_url, role):
    with psycopg.connect(supa_pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO budgets (team, daily_nanousd, updated_at) VALUES ('alpha', 100, 'x')")
        conn.execute("INSERT INTO gateway_keys (prefix, hash, team, created_at) VALUES ('0000beef', 'h', 'alpha', 'x')")
        # Supabase's default privileges granted every function to anon: the migrations revoked that
        granted = conn.execute("SELECT proname, has_function_privilege(%s, p.oid, 'EXECUTE') FROM pg_proc p "
                               "WHERE pronamespace = 'public'::regnamespace AND proname LIKE 'elfctl%%'",
                               (role,)).fetchall()
        assert set(FUNCTIONS) <= {fn for fn, _ in granted} and [fn for fn, ok in granted if ok] == []
        conn.execute(f"SET ROLE {role}")
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied for function elfctl_reserve"):
            conn.execute(f"SELECT public.elfctl_reserve({RESERVE_ARGS})")
        with pytest.raises(errors.InsufficientPrivilege, match="elfctl_key_lookup"):
            conn.execute("SELECT public.elfctl_key_lookup(p_prefix => '0000beef')")
        # The tables are granted to the role (Supabase's default), but row level security shows it nothing.
        assert conn.execute("SELECT count(*) FROM budgets").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM gateway_keys").fetchone()[0] == 0
        conn.execute("RESET ROLE")
        assert conn.execute("SELECT count(*) FROM budget_reservations").fetchone()[0] == 0  # nothing reserved


def test_service_role_calls_them_and_reads_everything(supa_pg_url):
    with psycopg.connect(supa_pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO budgets (team, daily_nanousd, updated_at) VALUES ('alpha', 100, 'x')")
        conn.execute("SET ROLE service_role")
        got = conn.execute(f"SELECT public.elfctl_reserve({RESERVE_ARGS})").fetchone()[0]
        assert got == {"ok": True, "expired": 0, "windows": {"day": {"spent": 0, "reserved": 10},
                                                             "month": {"spent": 0, "reserved": 10}}}
        assert conn.execute("SELECT count(*) FROM budgets").fetchone()[0] == 1  # BYPASSRLS
        assert conn.execute("SELECT amount_nanousd FROM budget_reservations").fetchall() == [(10,)]


def test_row_level_security_is_on_for_every_table(supa_pg_url):
    with psycopg.connect(supa_pg_url, autocommit=True) as conn:
        rows = conn.execute("SELECT relname, relrowsecurity FROM pg_class WHERE relkind = 'r' AND "
                            "relnamespace = 'public'::regnamespace").fetchall()
    assert len(rows) > 20 and {"api_usage", "budgets", "gateway_keys", "schema_migrations"} <= {r[0] for r in rows}
    assert [r[0] for r in rows if not r[1]] == []


def test_plain_postgres_without_supabases_roles_migrates_and_runs_them(pg_url, project):
    """No anon/authenticated/service_role in the database? The grants are skipped; the owner calls."""
    from elfctl import config
    from elfctl.bootstrap import migrations_dir
    from elfctl.services.platform import migrate

    store = PostgresStore(pg_url)
    try:
        migrate.migrate(store, migrations_dir(config.load(cwd=project)))
        b = Budget("alpha", daily_nanousd=100)
        assert budgets.reserve(store, b, 60, 60).level == "ok"
        with pytest.raises(budgets.Refused):
            budgets.reserve(store, b, 60, 60)
    finally:
        store.close()


@pytest.fixture
def service_store(supa_pg_url):
    """Open PostgresStores that run as service_role, as Supabase's REST API runs the service key's requests."""
    opened: list[PostgresStore] = []

    def open_one() -> PostgresStore:
        s = PostgresStore(as_role(supa_pg_url, "service_role"))
        opened.append(s)
        return s

    yield open_one
    for s in opened:
        s.close()


def fifty_reservations_at_once(stores: list, check) -> list[budgets.Reservation]:
    """50 threads, each with its own store (connection or REST client), reserve 7 units against a daily
    limit of 100 at the same moment: exactly 14 fit, the other 36 are refused naming the day, and the
    counters (read through `check`, straight from the database) hold exactly the 14's 98."""
    b = Budget("alpha", daily_nanousd=100, monthly_nanousd=1000)
    start = threading.Barrier(len(stores))
    got: list[object] = [None] * len(stores)

    def one(i: int) -> None:
        start.wait()
        try:
            got[i] = budgets.reserve(stores[i], b, 7, 60)
        except budgets.Refused as r:
            got[i] = r
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            got[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    ok = [g for g in got if isinstance(g, budgets.Reservation)]
    refused = [g for g in got if isinstance(g, budgets.Refused)]
    assert (len(ok), len(refused)) == (14, 36), [g for g in got if not isinstance(g, (budgets.Reservation,
                                                                                      budgets.Refused))]
    assert {r.state.window for r in refused} == {"day"}
    assert max(s.reserved for r in ok for s in r.states if s.window == "day") == 98
    counters = {r["window_kind"]: r["reserved_nanousd"] for r in check.query(
        "SELECT window_kind, reserved_nanousd FROM spend_counters WHERE team = 'alpha'")}
    assert counters == {"day": 98, "month": 98}
    assert check.query("SELECT count(*) AS n FROM budget_reservations")[0]["n"] == 14
    return ok


def test_fifty_concurrent_reservations_never_overspend(service_store):
    stores = [service_store() for _ in range(50)]  # each its own connection, as service_role
    ok = fifty_reservations_at_once(stores, stores[0])
    check = stores[0]
    # ... and settling them all gives everything back.
    for r in ok:
        budgets.release(check, r.id)
    assert {r["reserved_nanousd"] for r in check.query("SELECT reserved_nanousd FROM spend_counters")} == {0}


def test_a_refused_month_rolls_the_days_reservation_back(service_store):
    store = service_store()
    b = Budget("alpha", daily_nanousd=100, monthly_nanousd=50)
    with pytest.raises(budgets.Refused) as refused:
        budgets.reserve(store, b, 60, 60)
    assert refused.value.state.window == "month"
    assert {r["reserved_nanousd"] for r in store.query("SELECT reserved_nanousd FROM spend_counters")} <= {0}
    assert store.query("SELECT count(*) AS n FROM budget_reservations")[0]["n"] == 0


def test_an_expired_reservation_is_released_when_the_budget_looks_full(service_store):
    store = service_store()
    b = Budget("alpha", daily_nanousd=100)
    t = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    dead = budgets.reserve(store, b, 90, 5, now=t)  # its process dies: never settled
    res = budgets.reserve(store, b, 90, 5, now=t + dt.timedelta(seconds=6))
    assert res.states[0].reserved == 90
    assert [r["id"] for r in store.query("SELECT id FROM budget_reservations")] == [res.id] != [dead.id]


ZONES = ("UTC", "America/New_York", "Europe/Paris", "Australia/Lord_Howe", "Asia/Kathmandu", "Pacific/Chatham",
         "America/St_Johns")
MOMENTS = ("2026-03-08T06:59:59.999+00:00", "2026-03-08T07:00:00.000+00:00", "2026-03-29T00:30:00.000+00:00",
           "2026-03-31T22:30:00.000+00:00", "2026-04-05T14:45:00.000+00:00", "2026-10-31T23:59:59.999+00:00",
           "2026-11-01T05:30:00.000+00:00", "2026-12-31T23:30:00.000+00:00", "2027-01-01T00:00:00.000+00:00")


def test_the_ledgers_windows_in_the_database_are_pythons(service_store):
    """elfctl_record_usage computes each row's day and month in the team's time zone; Python's
    window_start (which the SQLite path and every reader use) must agree at DST changes, odd offsets
    and month ends."""
    store = service_store()
    rows = []
    for i, tz in enumerate(ZONES):
        team = f"t{i}"
        budgets.set_budget(store, Budget(team, daily_nanousd=10**12, timezone=tz))
        rows += [UsageRow(f"{team}-{j}", ts, team, "m", "m", cost_nanousd=1) for j, ts in enumerate(MOMENTS)]
    assert ledger.record(store, rows) == len(rows)
    want: dict[tuple, int] = {}
    for r in rows:
        tz = ZONES[int(r.team[1:])]
        for kind in bmod.WINDOWS:
            key = (r.team, kind, bmod.window_start(kind, dt.datetime.fromisoformat(r.ts), tz))
            want[key] = want.get(key, 0) + 1
    # (set_budget made today's counters, empty)
    got = {(r["team"], r["window_kind"], r["window_start"]): r["spent_nanousd"]
           for r in store.query("SELECT * FROM spend_counters WHERE spent_nanousd <> 0")}
    assert got == want


def test_recording_is_idempotent_and_settles_named_reservations(service_store):
    store = service_store()
    b = Budget("alpha", daily_nanousd=1000)
    res = budgets.reserve(store, b, 400, 60)
    row = UsageRow("req-1", iso(dt.datetime.now(dt.UTC)), "alpha", "gpt", "gpt", cost_nanousd=250,
                   outcome="error", fallback_reason="429", priced=False, reservation_id=res.id)
    assert ledger.record(store, [row, row]) == 1
    assert ledger.record(store, [row]) == 0  # a replay of the same request id: nothing moves
    day = store.query("SELECT * FROM spend_counters WHERE window_kind = 'day'")[0]
    assert (day["spent_nanousd"], day["reserved_nanousd"]) == (250, 0)
    s = store.query("SELECT calls, errors, fallbacks, unpriced, cost_nanousd FROM daily_cost_summary")
    assert s == [{"calls": 1, "errors": 1, "fallbacks": 1, "unpriced": 1, "cost_nanousd": 250}]
    assert store.query("SELECT count(*) AS n FROM budget_reservations")[0]["n"] == 0


def test_call_refuses_names_that_are_not_identifiers(service_store):
    from elfctl.errors import InputError

    store = service_store()
    for fn, args in (("elfctl_reserve(); DROP TABLE budgets; --", {}), ("elfctl_settle", {"p_ids) --": []}),
                     ("Elfctl_Settle", {})):
        with pytest.raises(InputError, match="is not a valid name"):
            store.call(fn, args)
    assert "budgets" in store.tables()


def test_a_missing_function_says_the_store_is_not_migrated(pg_url):
    from elfctl.errors import StoreNotMigrated

    store = PostgresStore(pg_url)
    try:
        with pytest.raises(StoreNotMigrated, match="not migrated"):
            store.call("elfctl_settle", {"p_ids": ["x"]})
    finally:
        store.close()


KILLED_WRITER = """
import sys
from elfctl.adapters.postgres import PostgresStore
store = PostgresStore(sys.argv[1])
rows = [{"request_id": f"big-{i}", "ts": "2026-05-01T10:00:00.000+00:00", "day": "2026-05-01", "team": "alpha",
         "requested_model": "m", "model": f"m{i % 50}", "cost_nanousd": 3, "priced": 1, "outcome": "ok",
         "source": "elfctl", "reservation_id": None} for i in range(int(sys.argv[2]))]
print("calling", flush=True)
store.call("elfctl_record_usage", {"p_rows": rows})
"""


def test_a_writer_killed_mid_call_leaves_all_or_nothing(service_store, supa_pg_url):
    """kill -9 of the process whose elfctl_record_usage is running: the ledger, the rollup and the
    counters move together or not at all (one function, one transaction)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    store = service_store()
    watch = PostgresStore(supa_pg_url)  # the test user: pg_stat_activity shows it every session's query
    active = ("SELECT 1 FROM pg_stat_activity WHERE query LIKE '%elfctl_record_usage%' AND state = 'active' "
              "AND pid <> pg_backend_pid()")
    n = 60000
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, as_role(supa_pg_url, "service_role"), str(n)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert proc.stdout.readline().strip() == "calling"
        deadline = time.monotonic() + 60
        while not watch.query(active):
            assert time.monotonic() < deadline and proc.poll() is None, "the call never started"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    deadline = time.monotonic() + 60
    while watch.query(active):
        assert time.monotonic() < deadline, "the killed call's backend never ended"
        time.sleep(0.05)
    watch.close()
    rows = store.query("SELECT count(*) AS n, COALESCE(sum(cost_nanousd), 0) AS c FROM api_usage")[0]
    assert rows["n"] in (0, n)
    summary = store.query("SELECT COALESCE(sum(calls), 0) AS n, COALESCE(sum(cost_nanousd), 0) AS c "
                          "FROM daily_cost_summary")[0]
    assert (summary["n"], summary["c"]) == (rows["n"], rows["c"])
    spent = {r["window_kind"]: r["spent_nanousd"] for r in store.query("SELECT * FROM spend_counters")}
    assert spent == ({} if rows["n"] == 0 else {"day": rows["c"], "month": rows["c"]})


def test_hostile_values_are_data_never_sql(service_store):
    """Quotes, SQL and odd text in every text field go through as values; a wrong type is refused by
    the database and reported as bad input, with nothing written."""
    from elfctl.errors import InputError

    store = service_store()
    nasty = "x'); DROP TABLE api_usage; --\"\\ é \u202e"
    row = UsageRow(nasty, "2026-05-01T10:00:00.000+00:00", "alpha", nasty, nasty, agent=nasty, provider=nasty,
                   cost_nanousd=5, fallback_reason=nasty, reservation_id=nasty)
    assert ledger.record(store, [row]) == 1
    got = store.query("SELECT request_id, model, agent FROM api_usage")
    assert got == [{"request_id": nasty, "model": nasty, "agent": nasty}]
    with pytest.raises(InputError, match="refused a value"):
        store.call("elfctl_record_usage", {"p_rows": [{"request_id": "r2", "ts": "2026-05-01T10:00:00.000+00:00",
                                                       "day": "2026-05-01", "team": "alpha", "requested_model": "m",
                                                       "model": "m", "cost_nanousd": "lots"}]})
    assert store.query("SELECT count(*) AS n FROM api_usage")[0]["n"] == 1
