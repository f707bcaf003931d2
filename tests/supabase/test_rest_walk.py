"""Every command the issue names as running over Supabase's REST API, walked with only SUPABASE_URL and
SUPABASE_KEY set: each exits 0 and prints the same `--json` as over the project's database connection
(SUPABASE_DB_URL-style direct Postgres), and none asks for SUPABASE_DB_URL. The commands that change
something (budgets, breakers, gateway keys) are run over REST and read back both ways."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from elfctl.adapters.postgres import PostgresStore
from elfctl.domain.clock import iso, now
from elfctl.domain.usage import UsageRow
from elfctl.services.cost import ledger
from tests.conftest import run_elfctl
from tests.llm.test_calls import _team

READS = [
    ("cost", "report"), ("cost", "report", "--by", "model"), ("cost", "report", "--by", "day"),
    ("cost", "report", "--by", "agent", "--team", "alpha"), ("cost", "report", "--by", "revision"),
    ("cost", "report", "--by", "request", "--team", "beta"), ("cost", "dashboard"), ("cost", "dashboard", "--team", "alpha"),
    ("cost", "predict"), ("cost", "optimize"), ("cost", "check", "--team", "alpha"), ("cost", "budget", "list"),
    ("cost", "budget", "show", "alpha"), ("registry", "list"), ("registry", "show", "svc-a"), ("registry", "graph"),
    ("breakers", "list"),
    ("audit", "actions"), ("queue", "list"), ("health", "--component", "store"),
    ("db", "status"),
]


@pytest.fixture
def walk(rest, supa_pg_url, project):
    """A ledger of two teams over the last days, a budget, a registered service, an open breaker."""
    db = PostgresStore(supa_pg_url)
    t = now()
    rows = [UsageRow(request_id=f"w{i}", ts=iso(t - dt.timedelta(hours=5 * i)), team=("alpha", "beta")[i % 2],
                     requested_model="gpt-4o", model=("gpt-4o", "gpt-4o-mini")[i % 3 == 0], agent=(None, "writer")[i % 2],
                     revision=(None, 3)[i % 4 == 0], prompt_tokens=100 + i, completion_tokens=20 + i,
                     cost_nanousd=10_000 * (i + 1), prompt_hash=f"h{i % 4}") for i in range(60)]
    ledger.record(db, rows)
    _team(project, fallbacks=())
    envs = {"rest": {"SUPABASE_URL": rest.url, "SUPABASE_KEY": rest.service_key, "ELFCTL_STORE_URL": ""},
            "postgres": {"ELFCTL_STORE_URL": supa_pg_url}}
    for args in (("cost", "budget", "set", "alpha", "--daily", "50"),
                 ("registry", "register", "svc-a", "--url", "http://a:8080", "--capability", "search"),
                 ("breakers", "open", "llm-provider", "--reason", "walk")):
        res = run_elfctl(*args, cwd=project, env=envs["postgres"])
        assert res.returncode == 0, (args, res.stdout, res.stderr)
    yield db, envs
    db.close()


def _json(project, env, *args):
    res = run_elfctl(*args, "--json", cwd=project, env=env)
    assert "SUPABASE_DB_URL" not in res.stdout + res.stderr, (args, res.stdout, res.stderr)
    assert res.returncode == 0, (args, res.stdout, res.stderr)
    return json.loads(res.stdout)


# What may differ between two runs a moment apart: the run's own times and the store's name, and the
# projections scaled by the time of day (today's run rate, forecasts, exhaustion times; the
# services' equality at one fixed `now` is tests/supabase/test_report_functions.py's).
MOMENT = re.compile(r"generated_at|time|latencyMs|output|store|projected_.*|hit_.*|(horizon_)?p[159]0_nanousd|exhausts")


def _same(value):
    if isinstance(value, dict):
        return {k: _same(v) for k, v in value.items() if not MOMENT.fullmatch(k)}
    if isinstance(value, list):
        return [_same(v) for v in value]
    return value


def test_every_read_over_rest_is_the_direct_read(walk, project, rest):
    db, envs = walk
    failed = []
    for args in READS:
        before = len(rest.requests)
        try:
            over_rest = _json(project, envs["rest"], *args)
            direct = _json(project, envs["postgres"], *args)
        except AssertionError as exc:
            failed.append(str(exc)[:600])
            continue
        if _same(over_rest) != _same(direct):
            import difflib

            diff = difflib.unified_diff(json.dumps(_same(direct), indent=1).splitlines(),
                                        json.dumps(_same(over_rest), indent=1).splitlines(), "direct", "rest", lineterm="")
            failed.append(f"{args}: differs\n" + "\n".join(list(diff)[:40]))
        if len(rest.requests) == before:
            failed.append(f"{args}: never reached the REST API")
    assert not failed, "\n\n".join(failed)


def test_the_writes_over_rest(walk, project):
    db, envs = walk
    rest_env = envs["rest"]
    got = _json(project, rest_env, "cost", "budget", "set", "beta", "--daily", "2", "--monthly", "40")
    assert _json(project, envs["postgres"], "cost", "budget", "show", "beta") == got
    assert db.query("SELECT daily_nanousd, monthly_nanousd FROM budgets WHERE team = 'beta'") == [
        {"daily_nanousd": 2 * 10**9, "monthly_nanousd": 40 * 10**9}]
    _json(project, rest_env, "breakers", "close", "llm-provider")
    assert db.query("SELECT state FROM breaker_state WHERE name = 'llm-provider'") == [{"state": "closed"}]


def test_html_report_and_whole_health_over_rest(walk, project):
    db, envs = walk
    out = project / "spend.html"
    res = run_elfctl("cost", "report", "--html", str(out), "--json", cwd=project, env=envs["rest"])
    assert res.returncode == 0 and "SUPABASE_DB_URL" not in res.stdout + res.stderr, res.stdout + res.stderr
    page = out.read_text()
    direct = project / "direct.html"
    assert run_elfctl("cost", "report", "--html", str(direct), cwd=project, env=envs["postgres"]).returncode == 0
    assert "<html" in page and len(page) == pytest.approx(len(direct.read_text()), rel=0.01)
    # the whole of `health`: every component as over the database connection, but credentials (they
    # need SQL by design: not checked, a warning naming SUPABASE_DB_URL, never a failure)
    res = run_elfctl("health", "--json", cwd=project, env=envs["rest"])
    checks = json.loads(res.stdout)["checks"]
    creds = checks.pop("creds")
    assert [c["status"] for c in creds] == ["warn"] and "SUPABASE_DB_URL" in creds[0]["hint"]
    assert "database connection" not in json.dumps(checks), res.stdout
    direct = json.loads(run_elfctl("health", "--json", cwd=project, env=envs["postgres"]).stdout)["checks"]
    direct.pop("creds")
    assert {k: [c["status"] for c in v] for k, v in checks.items()} == {
        k: [c["status"] for c in v] for k, v in direct.items()}
    assert checks["store"][0]["status"] == "pass" and checks["resource:database"][0]["status"] == "pass"
    assert checks["service-registry"][0]["status"] == "pass"


def test_registry_sweep_over_rest(walk, project):
    """The sweep (`registry sweep`, `registry graph`, health's service-registry component) over REST:
    an entry silent past its TTL turns critical, then one past deregister_after is removed, each a
    trail row; a second sweep changes nothing."""
    from elfctl.domain.registry import Entry
    from elfctl.services.registry import entries

    db, envs = walk
    long_ago = now() - dt.timedelta(hours=1)
    entries.register(db, Entry("stale", url="http://s:1", ttl_s=60), at=long_ago)
    entries.register(db, Entry("gone", url="http://g:1", ttl_s=60, deregister_after_s=600), at=long_ago)
    swept = _json(project, envs["rest"], "registry", "sweep")
    assert swept["removed"] == ["gone"] and swept["changed"] == [{"name": "stale", "was": "passing", "now": "critical"}]
    assert [r["name"] for r in db.query("SELECT name FROM registry_entries ORDER BY name")] == ["stale", "svc-a"]
    trail = db.query("SELECT target, strategy, result FROM platform_actions WHERE resource = 'registry' ORDER BY target")
    assert [(r["target"], r["strategy"]) for r in trail] == [("gone", "deregister"), ("stale", "update_registry")]
    again = _json(project, envs["rest"], "registry", "sweep")
    assert again["removed"] == [] and again["changed"] == []
    assert len(db.query("SELECT id FROM platform_actions WHERE resource = 'registry'")) == 2
