"""`cost report --by request` (the ledger's row export) over Supabase's REST API: a page at a time
through elfctl_usage_rows (migration 0140), against a PostgREST-compatible server that caps every
answer at max-rows as Supabase does. The export over REST is the direct Postgres export byte for
byte, both are what the SQL export (the path SQLite keeps) reads from the same table, filters agree,
and rows sharing a timestamp across a page boundary are neither dropped nor repeated."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from elfctl.adapters.postgres import PostgresStore
from elfctl.adapters.supabase_rest import RestStore
from elfctl.domain.usage import COLUMNS, UsageRow
from elfctl.services.cost import ledger, report
from tests.conftest import run_elfctl
from tests.supabase.conftest import jwt_like
from tests.supabase.test_report_functions import SqlOnly

TEAMS = ("alpha", "beta", "gamma")
TIE = 7  # rows per timestamp: page boundaries (1,000, 2,000) fall inside a group of equal timestamps
N = 2_702  # more than two pages and a bit


def _rows() -> list[UsageRow]:
    rnd = random.Random(19)
    start = dt.datetime(2026, 3, 10, 22, 0, tzinfo=dt.UTC)
    out = []
    for i in range(N):
        ts = (start + dt.timedelta(minutes=(i // TIE) * 3)).isoformat(timespec="milliseconds")
        out.append(UsageRow(request_id=f"{rnd.getrandbits(64):016x}", ts=ts, team=TEAMS[rnd.randrange(3)],
                            requested_model="gpt-4o", model=("gpt-4o", "gpt-4o-mini")[i % 2],
                            agent=(None, "writer")[i % 2], prompt_tokens=i, completion_tokens=3 * i,
                            cost_nanousd=1_000 + i, outcome=("ok", "error")[i % 13 == 0],
                            fallback_reason="rate_limited" if i % 17 == 0 else None, revision=(None, 4)[i % 3 == 0],
                            latency_ms=i % 900, prompt_hash=f"h{i % 5}"))
    rnd.shuffle(out)  # recorded in a random order: ids do not follow the timestamps
    return out


def _server(url: str, max_rows: int):
    from tests.postgrest_server import PostgrestServer

    server = PostgrestServer(url, service_key=jwt_like("service_role"), anon_key=jwt_like("anon"),
                             max_rows=max_rows).start()
    server.service_key = next(k for k, r in server.keys.items() if r == "service_role")
    return server


@pytest.fixture
def ledger_db(supa_pg_url):
    store = PostgresStore(supa_pg_url)
    for chunk in range(0, N, 1000):
        ledger.record(store, _rows()[chunk:chunk + 1000])
    yield store
    store.close()


@pytest.fixture(params=[1000, 250], ids=["max-rows-1000", "max-rows-250"])
def capped(request, supa_pg_url, ledger_db):
    """The REST API with Supabase's default max-rows (1,000), and with a project's lower setting."""
    server = _server(supa_pg_url, request.param)
    yield server
    server.stop()


def _sql_export(db, team=None, since=None, until=None) -> list[dict]:
    """The export as the SQL path reads it (SQLite's path, here on the same Postgres table)."""
    return report.report(SqlOnly(db), team=team, since=since, until=until, by="request").rows


def test_the_export_over_rest_is_the_postgres_export_byte_for_byte(capped, ledger_db, supa_pg_url, project):
    envs = {"rest": {"SUPABASE_URL": capped.url, "SUPABASE_KEY": capped.service_key, "ELFCTL_STORE_URL": ""},
            "postgres": {"ELFCTL_STORE_URL": supa_pg_url}}
    seen = {}
    for fmt in ("--json", "--csv", None):
        out = {}
        for kind, env in envs.items():
            before = len(capped.requests)
            res = run_elfctl("cost", "report", "--by", "request", *([fmt] if fmt else []), cwd=project, env=env)
            assert res.returncode == 0, (kind, fmt, res.stdout[-500:], res.stderr)
            out[kind] = res.stdout
            pages = [r for r in capped.requests[before:] if r["path"] == "/rest/v1/rpc/elfctl_usage_rows"]
            assert len(pages) == (3 if kind == "rest" else 0)  # 2,702 rows: 1,000 + 1,000 + 702
            assert not any(r["path"] == "/rest/v1/api_usage" for r in capped.requests[before:])
        assert out["rest"] == out["postgres"], fmt
        seen[fmt] = out["rest"]
    rows = json.loads(seen["--json"])["rows"]
    assert len(rows) == N and rows == _sql_export(ledger_db)
    assert list(rows[0]) == list(COLUMNS)
    assert seen["--csv"].count("\n") == N + 1  # the header and every row
    assert f"{N} usage rows" in seen[None]  # the human view


@pytest.fixture
def rest_store(supa_pg_url, ledger_db):
    server = _server(supa_pg_url, 1000)
    store = RestStore(server.url, server.service_key)
    yield store
    store.close()
    server.stop()


@pytest.mark.parametrize("team,since,until", [
    ("alpha", None, None), (None, "2026-03-12", None), (None, None, "2026-03-11"),
    ("beta", "2026-03-11", "2026-03-13"), ("nobody", None, None), ("x'); DROP TABLE api_usage; --", None, None),
    (None, "2026-03-13", "2026-03-12")])
def test_filters_agree(rest_store, ledger_db, team, since, until):
    over_rest = report.report(rest_store, team=team, since=since, until=until, by="request").rows
    assert over_rest == report.report(ledger_db, team=team, since=since, until=until, by="request").rows
    assert over_rest == _sql_export(ledger_db, team, since, until)
    if team in TEAMS:
        assert over_rest and {r["team"] for r in over_rest} == {team}
    if since and until and since <= until:
        assert over_rest and {r["day"] for r in over_rest} <= {f"2026-03-{d}" for d in range(11, 14)}
    assert ledger_db.query("SELECT count(*) AS n FROM api_usage")[0]["n"] == N


def test_equal_timestamps_across_a_page_boundary_are_neither_dropped_nor_repeated(rest_store, ledger_db):
    want = _sql_export(ledger_db)
    assert want[999]["ts"] == want[1000]["ts"] and want[1999]["ts"] == want[2000]["ts"]  # ties at both boundaries
    got = report.report(rest_store, by="request").rows
    assert [r["request_id"] for r in got] == [r["request_id"] for r in want]
    assert len({r["request_id"] for r in got}) == N
    # pages of 3 (every group of 7 equal timestamps is cut by at least one boundary), and of 1
    for page in (3, 1):
        small = list(report.usage_rows(rest_store, "gamma", None, None, page=page))
        assert [r["request_id"] for r in small] == [r["request_id"] for r in _sql_export(ledger_db, "gamma")]


def test_max_rows_cuts_a_plain_read_but_not_the_stores_reads_nor_the_export(supa_pg_url, ledger_db):
    """The cap is real: one plain request for api_usage gets 250 rows. The store asks in pages of the
    project's max-rows (supabase.max_rows) and follows every full page: all N rows, each once, and a
    limit above the cap is honoured; the export gets every row too."""
    server = _server(supa_pg_url, 250)
    store = RestStore(server.url, server.service_key, max_rows=250)
    try:
        assert len(store._rest.from_("api_usage").select("id").execute().data) == 250
        ids = [r["id"] for r in store.select("api_usage", columns="id", order="id")]
        assert ids == [r["id"] for r in ledger_db.query("SELECT id FROM api_usage ORDER BY id")] and len(ids) == N
        assert len(store.select("api_usage", columns="id", order="id", limit=600)) == 600
        assert len(store.select("api_usage", {"team": "gamma"}, columns="id")) == len(_sql_export(ledger_db, "gamma"))
        assert len(report.report(store, by="request").rows) == N
    finally:
        store.close()
        server.stop()


def test_the_function_clamps_the_page_and_refuses_the_api_roles(supa_pg_url, ledger_db):
    import psycopg

    got = ledger_db.call("elfctl_usage_rows", {"p_limit": 5000})
    assert len(got["rows"]) == 1000 and got["more"] is True  # never more than 1,000 rows an answer
    last = ledger_db.call("elfctl_usage_rows", {"p_after_ts": "9999", "p_after_id": 0})
    assert last == {"rows": [], "more": False}
    with psycopg.connect(supa_pg_url, autocommit=True) as conn:
        for role in ("anon", "authenticated"):
            conn.execute(f"SET ROLE {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT public.elfctl_usage_rows()")
            conn.execute("RESET ROLE")


def test_registry_list_over_rest_shows_every_entry_past_max_rows(supa_pg_url, project):
    """`registry list` over REST with 600 entries behind a 250-row cap: all 600 (in three pages), the
    same as over the database connection. Without paging the list stopped silently at 250."""
    from elfctl.domain.registry import Entry
    from elfctl.services.registry import entries as reg

    db = PostgresStore(supa_pg_url)
    with db.transaction() as tx:
        for i in range(600):
            reg.register(tx, Entry(f"svc-{i:04d}", kind="service", url=f"http://svc-{i}:80", capabilities=("x",)))
    server = _server(supa_pg_url, 250)
    try:
        env = {"SUPABASE_URL": server.url, "SUPABASE_KEY": server.service_key, "ELFCTL_STORE_URL": "",
               "ELFCTL_SUPABASE_MAX_ROWS": "250"}
        res = run_elfctl("registry", "list", "--json", cwd=project, env=env)
        assert res.returncode == 0, res.stderr
        over_rest = sorted(e["name"] for e in json.loads(res.stdout))
        direct = run_elfctl("registry", "list", "--json", cwd=project,
                            env={"ELFCTL_STORE_URL": supa_pg_url, "SUPABASE_URL": "", "SUPABASE_KEY": ""})
        assert over_rest == sorted(e["name"] for e in json.loads(direct.stdout))
        assert len(over_rest) == 600
    finally:
        server.stop()
        db.close()
