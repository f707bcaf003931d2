"""Schema delivery and the report reads over Supabase's REST API (the PostgREST-compatible test server
over a Supabase-shaped Postgres): `db status` and `db migrate --print-sql` with only SUPABASE_URL and
SUPABASE_KEY, PostgREST's schema cache reloaded by `db migrate`, and `cost dashboard / report /
predict / optimize` over REST giving what the same database gives directly."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess

import pytest

from tests import usage_gen as g
from tests.conftest import run_elfctl
from tests.postgrest_server import PostgrestServer
from tests.supabase.test_print_sql import PSQL
from tests.supabase_db import supabase_database

NOW = dt.datetime(2026, 3, 18, 15, 30, tzinfo=dt.UTC)


@pytest.fixture
def at_100(pg_url, project):
    """A Supabase-shaped database migrated up to 0100 (before the database functions), and a REST
    server over it started then: its schema cache has no elfctl function."""
    supabase_database(pg_url, cwd=str(project), migrated=False)
    res = run_elfctl("db", "migrate", "--to", "100", cwd=project, env={"ELFCTL_STORE_URL": pg_url})
    assert res.returncode == 0, res.stderr
    server = PostgrestServer(pg_url, service_key="svc-" + secrets.token_hex(16),
                             anon_key="anon-" + secrets.token_hex(16)).start()
    server.service_key = next(k for k, r in server.keys.items() if r == "service_role")
    server.cache()  # loaded at start, as PostgREST does
    yield server
    server.stop()


def _rest_env(server) -> dict:
    return {"SUPABASE_URL": server.url, "SUPABASE_KEY": server.service_key}


def test_status_and_print_sql_over_rest_only(project, pg_url, at_100):
    env = _rest_env(at_100)
    status = run_elfctl("db", "status", "--json", cwd=project, env=env)
    assert status.returncode == 0, status.stderr
    out = json.loads(status.stdout)
    assert out["store"] == at_100.url and out["current_version"] == 100
    pending = [m["file"] for m in out["migrations"] if m["state"] == "pending"]
    assert pending and all(int(f[:4]) > 100 for f in pending)

    res = run_elfctl("db", "migrate", "--print-sql", "--json", cwd=project, env=env)
    assert res.returncode == 0, res.stderr
    script = json.loads(res.stdout)
    assert script["dialect"] == "postgres" and [m["file"] for m in script["migrations"]] == pending
    assert "0110_store_functions.postgres.sql" in pending  # the Postgres files, though the store is REST

    # migrate itself needs the database connection: one line naming SUPABASE_DB_URL, exit 2
    refused = run_elfctl("db", "migrate", cwd=project, env=env)
    assert refused.returncode == 2 and "SUPABASE_DB_URL" in refused.stderr and "Traceback" not in refused.stderr

    applied = subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg_url], input=script["sql"],
                             capture_output=True, text=True, timeout=120)
    assert applied.returncode == 0, applied.stderr
    after = json.loads(run_elfctl("db", "status", "--json", cwd=project, env=env).stdout)
    assert after["pending"] == 0
    # the script's NOTIFY reloaded the REST server's cache: the new functions answer at once
    res = run_elfctl("cost", "dashboard", "--json", cwd=project, env=env)
    assert res.returncode == 0, res.stdout + res.stderr


def test_a_new_function_is_404_until_db_migrate_reloads_the_schema(project, pg_url, at_100):
    from elfctl.adapters.supabase_rest import RestStore
    from elfctl.errors import StoreNotMigrated

    rest = RestStore(at_100.url, at_100.service_key)
    # applied behind PostgREST's back (as a migration run by hand would be, without the NOTIFY)
    script = json.loads(run_elfctl("db", "migrate", "--print-sql", "--json", cwd=project,
                                   env={"ELFCTL_STORE_URL": pg_url}).stdout)["sql"]
    script = script.replace("NOTIFY pgrst, 'reload schema';", "")
    assert subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg_url], input=script,
                          capture_output=True, text=True, timeout=120).returncode == 0
    args = {"p_lo": "2026-03-01", "p_hi": "2026-03-18", "p_start": "2026-03-01", "p_end": "2026-03-18"}
    with pytest.raises(StoreNotMigrated) as err:
        rest.call("elfctl_dashboard", args)
    assert "elfctl_dashboard" in err.value.message
    assert at_100.requests[-1]["path"] == "/rest/v1/rpc/elfctl_dashboard"
    # `db migrate` finds nothing to apply, and still tells PostgREST to reload
    res = run_elfctl("db", "migrate", "--json", cwd=project, env={"ELFCTL_STORE_URL": pg_url})
    assert res.returncode == 0 and json.loads(res.stdout)["applied"] == []
    assert rest.call("elfctl_dashboard", args)["by_day_team"] == []
    rest.close()


@pytest.fixture
def ledger_both_ways(project, pg_url, at_100, open_store):
    """The same populated ledger, reached directly and over REST."""
    from elfctl.adapters.supabase_rest import RestStore

    direct = open_store(pg_url)
    g.populate(direct, days=40, rows=5_000, now=NOW)  # migrates the rest of the way
    rest = RestStore(at_100.url, at_100.service_key)
    yield direct, rest
    rest.close()


def test_the_reports_over_rest_are_the_reports(ledger_both_ways, at_100):
    from elfctl.services.cost import optimize, predict, report, views

    direct, rest = ledger_both_ways
    at_100.requests.clear()
    assert views.dashboard(rest, now=NOW) == views.dashboard(direct, now=NOW)
    assert [r["path"] for r in at_100.requests] == ["/rest/v1/rpc/elfctl_dashboard"]  # a refresh is one request
    assert views.dashboard(rest, team="ops", now=NOW) == views.dashboard(direct, team="ops", now=NOW)
    for by in ("team", "model", "day", "revision", "agent"):
        assert report.report(rest, by=by, since="2026-03-01") == report.report(direct, by=by, since="2026-03-01")
    assert predict.predict(rest, now=NOW) == predict.predict(direct, now=NOW)
    catalog = {}
    assert optimize.optimize(rest, catalog, now=NOW) == optimize.optimize(direct, catalog, now=NOW)
    # aggregated in the database: no request read a usage row
    paths = {r["path"] for r in at_100.requests}
    assert "/rest/v1/api_usage" not in paths and "/rest/v1/daily_cost_summary" not in paths
    assert {"/rest/v1/rpc/elfctl_dashboard", "/rest/v1/rpc/elfctl_report", "/rest/v1/rpc/elfctl_predict",
            "/rest/v1/rpc/elfctl_optimize"} <= paths


def test_cost_check_and_the_budgets_health_over_rest(project, ledger_both_ways, at_100):
    from elfctl.domain.budget import Budget
    from elfctl.services.cost import budget_health, budgets

    direct, rest = ledger_both_ways
    budgets.set_budget(direct, Budget("ops", daily_nanousd=10_000))
    budgets.reserve(direct, budgets.get(direct, "ops"), 9_000, ttl_s=60)  # past the soft limit
    env = _rest_env(at_100)
    over_rest = run_elfctl("cost", "check", "--team", "ops", "--json", cwd=project, env=env)
    assert over_rest.returncode == 0, over_rest.stdout + over_rest.stderr
    got = json.loads(over_rest.stdout)
    assert got["status"] == "soft" and got["windows"][0]["reserved_nanousd"] == 9_000
    direct_out = run_elfctl("cost", "check", "--team", "ops", "--json", cwd=project,
                            env={"ELFCTL_STORE_URL": direct.display_url})
    assert json.loads(direct_out.stdout) == got
    probe = budget_health.budget_probe(lambda: rest, project / "teams")()
    assert probe == budget_health.budget_probe(lambda: direct, project / "teams")()
    assert probe.status == "warn" and "ops:" in probe.output
    assert not any(r["path"].startswith("/rest/v1/api_usage") for r in at_100.requests)
