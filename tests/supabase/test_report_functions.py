"""The report aggregates as database functions (migration 0120): on one Postgres ledger, every read
behind `cost dashboard / report / predict / optimize` gives exactly what the services' SQL gives
(the SQL path is the same store with its `call` hidden), and on a database shaped like a Supabase
project only service_role may execute them."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from elfctl.domain.usage import UsageRow
from elfctl.ports import runs_functions
from elfctl.services.cost import ledger, optimize, predict, report, views
from tests import usage_gen as g
from tests.supabase_db import supabase_database

NOW = dt.datetime(2026, 3, 18, 15, 30, tzinfo=dt.UTC)


class SqlOnly:
    """The same store without database functions: the services take their SQL path."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        if name == "call":
            raise AttributeError(name)
        return getattr(self._store, name)


@pytest.fixture
def stores(pg_url, open_store, project):
    store = open_store(pg_url)
    g.populate(store, days=70, rows=20_000, now=NOW)
    rows = []
    for i in range(40):  # agents, revisions and repeated prompts, which the generator leaves out
        day = (NOW - dt.timedelta(days=i % 9)).date().isoformat()
        rows.append(UsageRow(request_id=f"x{i}", ts=f"{day}T08:00:0{i % 10}.000+00:00", team=("ops", "web")[i % 2],
                             requested_model="gpt-4o", model=("gpt-4o", "gpt-4o-mini")[i % 3 == 0],
                             agent=(None, "writer", "critic")[i % 3], revision=(None, 10, 3, 2)[i % 4],
                             prompt_tokens=100 + i, completion_tokens=50 + (i % 7) * 400, cost_nanousd=1_000 * i,
                             outcome="ok" if i % 5 else "error", prompt_hash=f"h{i % 6}",
                             fallback_reason="rate_limited" if i % 11 == 0 else None))
    ledger.record(store, rows)
    assert runs_functions(store) and not runs_functions(SqlOnly(store))
    return store, SqlOnly(store)


def test_the_functions_return_what_the_sql_returns(stores):
    fn, sql = stores
    teams = [r["team"] for r in fn.query("SELECT DISTINCT team FROM daily_cost_summary ORDER BY 1")][:2]
    for team in (None, *teams, "nobody"):
        assert views.dashboard(fn, team=team, now=NOW) == views.dashboard(sql, team=team, now=NOW)
        assert views.dashboard(fn, team=team, days=3, since="2026-02-01", until="2026-02-20", now=NOW) == \
            views.dashboard(sql, team=team, days=3, since="2026-02-01", until="2026-02-20", now=NOW)
        if team != "nobody":
            assert predict.predict(fn, team=team, horizon="30d", now=NOW) == \
                predict.predict(sql, team=team, horizon="30d", now=NOW)
        for by in ("team", "model", "day", "revision", "agent"):
            for since, until in ((None, None), ("2026-03-12", None), ("2026-03-01", "2026-03-14")):
                got = report.report(fn, team=team, since=since, until=until, by=by)
                assert got == report.report(sql, team=team, since=since, until=until, by=by), (by, team, since)
    # revisions in number order (as text r10 would come first), a missing one last
    assert [r.key for r in report.report(fn, by="revision", team="web").rows] == ["web r2", "web r10"]
    assert [r.key for r in report.report(fn, by="revision", team="ops").rows] == ["ops r3", "ops (no revision)"]


def test_optimize_reads_match(stores):
    from decimal import Decimal

    from elfctl.adapters.model_catalog import ModelFacts
    from elfctl.domain.pricing import Price

    fn, sql = stores
    used = [r["model"] for r in fn.query("SELECT DISTINCT model FROM api_usage ORDER BY 1")]

    def facts(name, k):
        d = Decimal
        return ModelFacts(name, "openai", Price(name, d(k), d(4 * k), d(k) / 2, d(k), d(4 * k)), 128_000, 16_384)

    catalog = {m: facts(m, 1000 // (i + 1)) for i, m in enumerate(used)}
    now = NOW + dt.timedelta(hours=1)
    got = optimize.optimize(fn, catalog, now=now)
    assert got == optimize.optimize(sql, catalog, now=now)
    assert {r.kind for r in got.items} >= {"cheaper_model", "cache_repeats"}  # the evidence reads ran
    for team in ("ops", "web"):
        assert optimize.optimize(fn, catalog, team=team, now=now) == optimize.optimize(sql, catalog, team=team, now=now)


REPORT_CALLS = {
    "elfctl_dashboard": "'2026-03-01', '2026-03-18', '2026-03-01', '2026-03-18'",
    "elfctl_report": "'team'",
    "elfctl_predict": "'2026-03-01', '2026-03-18'",
    "elfctl_optimize": "'2026-03-01', '2026-03-18'",
    "elfctl_usage_fit": "'ops', '2026', '2027', 'gpt-4o', 10, 10",
    "elfctl_repeated_prompts": "'ops', '2026', '2027'",
}


def test_only_service_role_may_run_them(project, pg_url):
    supabase_database(pg_url, cwd=str(project))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for fn, args in REPORT_CALLS.items():
            definer, config = conn.execute(
                "SELECT prosecdef, proconfig FROM pg_proc WHERE proname = %s", (fn,)).fetchone()
            assert definer and config == ['search_path=""'], fn
            for role in ("anon", "authenticated"):
                conn.execute(f"SET ROLE {role}")
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"SELECT public.{fn}({args})")
                conn.execute("RESET ROLE")
            conn.execute("SET ROLE service_role")
            conn.execute(f"SELECT public.{fn}({args})")  # runs; as the owner, through row level security
            conn.execute("RESET ROLE")


def test_a_store_behind_on_migrations_says_so(project, pg_url):
    """Not migrated at all, or only up to 0110 (no report functions yet): every report says to
    migrate (the function call is the schema check where the store runs functions)."""
    import json

    from tests.conftest import run_elfctl

    env = {"ELFCTL_STORE_URL": pg_url}
    for version in (None, "110"):
        if version:
            assert run_elfctl("db", "migrate", "--to", version, cwd=project, env=env).returncode == 0
        for cmd in (("cost", "dashboard"), ("cost", "predict"), ("cost", "optimize"), ("cost", "report")):
            res = run_elfctl(*cmd, "--json", cwd=project, env=env)
            assert res.returncode == 1, (cmd, res.stdout + res.stderr)
            err = json.loads(res.stdout)["error"]
            assert err["code"] == "store_not_migrated" and "elfctl db migrate" in err["message"] + err["hint"]
