"""Automatic actions and alerts over Supabase's REST API (migration 0130): the actions trail and the
notify outbox written by `rpc('elfctl_record_action')`, a breaker held or released by hand with
`rpc('elfctl_breaker_hold')`, against the PostgREST-compatible test server over a Supabase-shaped
Postgres, each request running as service_role. Read back through REST (`select`) and directly."""

from __future__ import annotations

import json

import pytest

from elfctl.domain.budget import Budget
from elfctl.services.actions import trail
from elfctl.services.cost import budgets
from elfctl.services.notify import outbox
from tests.conftest import run_elfctl
from tests.registry.test_prober import Team, deployed, prober


@pytest.fixture
def down_team():
    t = Team("down")  # answers its health path with 503
    yield t
    t.stop()


def _rest_env(rest) -> dict:
    return {"SUPABASE_URL": rest.url, "SUPABASE_KEY": rest.service_key, "ELFCTL_STORE_URL": ""}


def _event_of(store, action_id: str) -> dict:
    rows = store.select("notify_events", {"dedupe_key": f"action:{action_id}"})
    assert len(rows) == 1, rows
    return rows[0]


def test_a_probe_changing_a_status_over_rest_leaves_its_trail_row_and_alert(rest, rest_store, db, down_team):
    deployed(db, "critic", down_team.port)
    done = prober(rest_store).round()  # the gateway's prober, its store the REST API
    assert [(n, o) for n, o, _ in done] == [("critic", "fail")]
    rows = rest_store.select("platform_actions", {"target": "critic"})
    assert [(r["resource"], r["strategy"], r["trigger"], r["team"]) for r in rows] == [
        ("registry", "update_registry", "status passing -> critical", "critic")]
    event = _event_of(rest_store, rows[0]["id"])
    assert (event["kind"], event["severity"], event["team"]) == ("action.update_registry", "critical", "critic")
    assert json.loads(event["details"])["trigger"] == "status passing -> critical"
    assert any(r["path"] == "/rest/v1/rpc/elfctl_record_action" for r in rest.requests)
    # the same status again: no second row
    prober(rest_store).round()
    assert len(db.query("SELECT id FROM platform_actions WHERE target = 'critic'")) == 1


def test_registry_list_over_rest_probes_a_team_whose_status_changes(rest, db, project, down_team):
    """`registry list` probes the deployed teams that are due first: a status change is written to
    the trail over REST (before 0130 the command failed there, asking for SUPABASE_DB_URL)."""
    deployed(db, "critic", down_team.port)
    with open(project / "elfctl.toml", "a") as f:
        f.write("\n[discovery]\nprobe_period_s = 0.1\n")
    res = run_elfctl("registry", "list", "--json", cwd=project, env=_rest_env(rest))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUPABASE_DB_URL" not in res.stderr
    rows = db.query("SELECT id, actor, trigger FROM platform_actions WHERE target = 'critic'")
    assert [r["trigger"] for r in rows] == ["status passing -> critical"]
    assert db.query("SELECT severity FROM notify_events WHERE dedupe_key = ?", (f"action:{rows[0]['id']}",)) == [
        {"severity": "critical"}]


def test_a_budget_soft_alert_over_rest_lands_in_the_outbox(rest_store, db, caplog):
    b = Budget("soft-over-rest", daily_nanousd=1000)
    res = budgets.reserve(rest_store, b, 900, 60)  # 90% of the day: past the soft limit (80%)
    assert res.level == "soft"
    assert "not queued" not in caplog.text
    rows = db.query("SELECT kind, severity, team, dedupe_key FROM notify_events WHERE team = 'soft-over-rest'")
    assert [(r["kind"], r["severity"]) for r in rows] == [("budget.soft", "warning")]
    assert rows[0]["dedupe_key"].startswith("budget.soft:soft-over-rest:day:")
    with pytest.raises(budgets.Refused):
        budgets.reserve(rest_store, b, 900, 60)  # the hard limit: its own alert, once
    kinds = sorted(r["kind"] for r in db.query("SELECT kind FROM notify_events WHERE team = 'soft-over-rest'"))
    assert kinds == ["budget.hard", "budget.soft"]


def test_an_event_alone_over_rest_is_stored_once_by_its_key(rest_store, db):
    from elfctl.domain.notify import Event

    ev = Event("test.kind", "a title", dedupe_key="rest-only-once", severity="warning")
    assert outbox.emit(rest_store, ev) is True
    outbox._seen.discard(ev.dedupe_key)  # as another process would: only the database's key stops it
    assert outbox.emit(rest_store, Event("test.kind", "again", dedupe_key="rest-only-once")) is False
    assert db.query("SELECT title FROM notify_events WHERE dedupe_key = 'rest-only-once'") == [{"title": "a title"}]
    assert db.query("SELECT count(*) AS n FROM platform_actions")[0]["n"] == 0


def test_an_action_and_its_event_are_one_transaction_over_rest(rest_store, db):
    first = trail.record(rest_store, trail.Action("docker", "memory 93%", "scale_down", "ok", "resources", "alpha"))
    # the same action id again: the row is refused (primary key), and its event goes with it
    with pytest.raises(Exception):  # noqa: B017 - the store's translated error; what matters is what stayed
        trail.record(rest_store, trail.Action("docker", "again", "scale_down", "ok", "resources", "alpha",
                                              id=first.id, ts="2026-01-01T00:00:00.000+00:00"))
    assert db.query("SELECT count(*) AS n FROM platform_actions")[0]["n"] == 1
    assert [r["title"] for r in db.query("SELECT title FROM notify_events")] == [
        "docker: scale_down (ok)"]


def test_on_postgres_the_trail_joins_the_callers_transaction(db):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with db.transaction() as tx:
            trail.record(tx, trail.Action("docker", "memory 93%", "scale_down", "ok", "resources", "alpha"))
            raise Boom
    assert db.query("SELECT count(*) AS n FROM platform_actions")[0]["n"] == 0
    assert db.query("SELECT count(*) AS n FROM notify_events")[0]["n"] == 0
    with db.transaction() as tx:
        done = trail.record(tx, trail.Action("docker", "memory 93%", "scale_down", "ok", "resources", "alpha"))
    assert [a.id for a in trail.recent(db)] == [done.id]


def test_breakers_open_and_close_with_only_the_rest_api(rest, db, project):
    env = _rest_env(rest)
    opened = run_elfctl("breakers", "open", "llm:gpt-x", "--reason", "postgresql://app:hunter2@db:5432/x refused",
                        "--json", cwd=project, env=env)
    assert opened.returncode == 0, opened.stdout + opened.stderr
    got = json.loads(opened.stdout)
    assert (got["name"], got["state"], got["held"] is not None) == ("llm:gpt-x", "open", True)
    assert db.query("SELECT state, held FROM breaker_state WHERE name = 'llm:gpt-x'")[0]["state"] == "open"

    listed = run_elfctl("breakers", "list", "--json", cwd=project, env=env)
    assert listed.returncode == 0, listed.stderr
    assert [(b["name"], b["state"]) for b in json.loads(listed.stdout)] == [("llm:gpt-x", "open")]

    closed = run_elfctl("breakers", "close", "llm:gpt-x", "--json", cwd=project, env=env)
    assert closed.returncode == 0, closed.stdout + closed.stderr
    assert (json.loads(closed.stdout)["state"], json.loads(closed.stdout)["held"]) == ("closed", None)
    rows = db.query("SELECT id, strategy, result, trigger FROM platform_actions WHERE resource = 'llm:gpt-x' "
                    "ORDER BY ts, result DESC")
    assert [(r["strategy"], r["result"]) for r in rows] == [
        ("circuit_break", "opened (held until closed by hand)"), ("circuit_break", "closed")]
    assert rows[1]["trigger"] == "closed by hand"
    assert "db:5432/x refused" in rows[0]["trigger"] and "hunter2" not in rows[0]["trigger"]  # scrubbed
    assert "hunter2" not in json.dumps(db.query("SELECT * FROM notify_events"))
    severities = {r["dedupe_key"]: r["severity"] for r in db.query("SELECT dedupe_key, severity FROM notify_events")}
    assert severities == {f"action:{rows[0]['id']}": "critical", f"action:{rows[1]['id']}": "critical"}

    # the trail read back over REST: `audit actions` filters by time and team in the database
    audit = run_elfctl("audit", "actions", "--since", "1h", "--json", cwd=project, env=env)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert [a["id"] for a in json.loads(audit.stdout)] == [rows[1]["id"], rows[0]["id"]]  # newest first
    none = run_elfctl("audit", "actions", "--team", "nobody", "--json", cwd=project, env=env)
    assert none.returncode == 0 and json.loads(none.stdout) == []

    # an unknown circuit: exit 2, one line naming it, nothing written
    before = db.query("SELECT count(*) AS n FROM platform_actions")[0]["n"]
    missing = run_elfctl("breakers", "close", "nosuch", cwd=project, env=env)
    assert missing.returncode == 2 and "no circuit breaker named 'nosuch'" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert db.query("SELECT count(*) AS n FROM platform_actions")[0]["n"] == before
    assert db.query("SELECT count(*) AS n FROM breaker_state WHERE name = 'nosuch'")[0]["n"] == 0
