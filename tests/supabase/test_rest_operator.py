"""The operator's writes over Supabase's REST API (migration 0160): `registry register` (flags, a file,
`import-card`), `deregister`, `heartbeat`; `gateway key create / revoke`; `notify list / retry`. Each
runs with only SUPABASE_URL/SUPABASE_KEY, exits 0 and leaves in the database what the same command
leaves over the project's database connection (read back directly); bad input is exit 2 with nothing
written; a gateway key never leaves the command but as its hash."""

from __future__ import annotations

import hashlib
import json

import pytest

from elfctl.domain.notify import Event
from elfctl.domain.registry import Entry
from elfctl.errors import InputError
from elfctl.services.notify import outbox
from elfctl.services.registry import entries
from tests.conftest import run_elfctl
from tests.registry.test_registry_cli import CARD, _Cards, card_server  # noqa: F401 - the card server fixture

ROW = "name, kind, url, endpoints, owner, lifecycle, capabilities, depends_on, metadata, ttl_s, deregister_after_s, " \
      "check_status, note, source, last_status"


@pytest.fixture
def envs(rest, supa_pg_url):
    return {"rest": {"SUPABASE_URL": rest.url, "SUPABASE_KEY": rest.service_key, "ELFCTL_STORE_URL": ""},
            "postgres": {"ELFCTL_STORE_URL": supa_pg_url}}


def _run(project, env, *args, code=0):
    res = run_elfctl(*args, cwd=project, env=env)
    assert "SUPABASE_DB_URL" not in res.stdout + res.stderr, (args, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == code, (args, res.stdout, res.stderr)
    return res


def _entry(db, name):
    rows = db.query(f"SELECT {ROW} FROM registry_entries WHERE name = ?", [name])
    caps = [r["capability"] for r in db.query("SELECT capability FROM registry_capabilities WHERE name = ? "
                                               "ORDER BY capability", [name])]
    return ({k: v for k, v in rows[0].items() if k != "name"} if rows else None), caps


def _snapshot(db):
    return (db.query("SELECT * FROM registry_entries ORDER BY name"),
            db.query("SELECT * FROM registry_capabilities ORDER BY name, capability"),
            db.query("SELECT id FROM platform_actions"))


def test_register_deregister_heartbeat_over_rest_write_what_direct_writes(rest, db, project, envs):
    flags = ("--url", "http://a:8080", "--kind", "service", "-c", "search", "-c", "rank", "--owner", "alpha",
             "--lifecycle", "production", "--ttl", "30s", "--deregister-after", "10m")
    _run(project, envs["rest"], "registry", "register", "over-rest", *flags)
    _run(project, envs["postgres"], "registry", "register", "direct", *flags)
    assert _entry(db, "over-rest") == _entry(db, "direct")
    assert _entry(db, "over-rest")[1] == ["rank", "search"]
    assert "/rest/v1/rpc/elfctl_registry_register" in {r["path"] for r in rest.requests}
    shown = {k: json.loads(_run(project, env, "registry", "show", "over-rest", "--json").stdout)
             for k, env in envs.items()}
    assert shown["rest"] == shown["postgres"]
    first = db.query("SELECT registered_at FROM registry_entries WHERE name = 'over-rest'")

    # a re-registration replaces the capabilities and keeps registered_at
    _run(project, envs["rest"], "registry", "register", "over-rest", "--url", "http://a:9090", "-c", "other")
    assert _entry(db, "over-rest")[1] == ["other"]
    assert db.query("SELECT registered_at, url FROM registry_entries WHERE name = 'over-rest'") == [
        {**first[0], "url": "http://a:9090"}]

    beat = json.loads(_run(project, envs["rest"], "registry", "heartbeat", "over-rest", "--status", "warn",
                           "--note", "slow disk", "--json").stdout)
    assert beat["status"] == "warning"
    assert db.query("SELECT check_status, note FROM registry_entries WHERE name = 'over-rest'") == [
        {"check_status": "warning", "note": "slow disk"}]

    _run(project, envs["rest"], "registry", "deregister", "over-rest")
    assert _entry(db, "over-rest") == (None, [])
    missing = _run(project, envs["rest"], "registry", "deregister", "over-rest", "--json", code=1)
    assert json.loads(missing.stdout)["error"]["code"] == "not_found"
    _run(project, envs["rest"], "registry", "heartbeat", "over-rest", code=1)
    assert rest.service_key not in "".join(str(r) for r in rest.requests)


def test_register_file_over_rest_is_all_or_none(db, project, envs, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("- {name: api, kind: service, url: 'http://api:80', capabilities: [search], depends_on: [store]}\n"
                    "- {name: store, kind: database, url: 'postgres://db:5432/x'}\n")
    _run(project, envs["rest"], "registry", "register", "--file", str(good))
    assert [r["name"] for r in db.query("SELECT name FROM registry_entries ORDER BY name")] == ["api", "store"]
    before = _snapshot(db)
    # a loop (store -> api -> store), a kind change, a bad URL: exit 2, one line, nothing written
    loop = tmp_path / "loop.yaml"
    loop.write_text("- {name: fresh, kind: service, url: 'http://f:80'}\n"
                    "- {name: store, kind: database, url: 'postgres://db:5432/x', depends_on: [api]}\n")
    res = _run(project, envs["rest"], "registry", "register", "--file", str(loop), code=2)
    assert "loop" in res.stderr or "cycle" in res.stderr, res.stderr
    res = _run(project, envs["rest"], "registry", "register", "store", "--url", "http://s:80", code=2)
    assert "registered already as a database" in res.stderr
    _run(project, envs["rest"], "registry", "register", "bad", "--url", "http://b:80", "--ttl", "soon", code=2)
    assert _snapshot(db) == before


def test_the_function_refuses_a_loop_and_a_kind_change_the_client_did_not_see(rest_store, db):
    """Two registrations at once each pass the client's check on what it read: the function checks again
    under its lock, so a loop or a kind change made behind the client's back is refused (exit 2's
    InputError), nothing written."""
    entries.register(rest_store, Entry("a", url="http://a:80", depends_on=("b",)))
    entries.register(rest_store, Entry("b", url="http://b:80"))
    before = _snapshot(db)
    e = Entry("b", url="http://b:80", depends_on=("a",), heartbeat_at="2026-01-01T00:00:00Z",
              registered_at="2026-01-01T00:00:00Z")
    looped = dict(zip(entries._COLS, entries._params(e), strict=True), last_status="passing")
    with pytest.raises(InputError, match="loop"):
        rest_store.call("elfctl_registry_register", {"p_entries": [looped]})
    with pytest.raises(InputError, match="registered already as a service"):
        rest_store.call("elfctl_registry_register", {"p_entries": [{**looped, "depends_on": "[]", "kind": "team"}]})
    assert _snapshot(db) == before


def test_deploys_register_and_deregister_over_rest_write_their_trail_rows(rest_store, db):
    entries.register(rest_store, Entry("alpha", kind="team", url="http://alpha:80", capabilities=("chat",)),
                     actor="deploy")
    entries.register(rest_store, Entry("alpha", kind="team", url="http://alpha:81"), actor="deploy")
    assert entries.deregister(rest_store, "alpha", actor="deploy", why="destroyed")
    assert not entries.deregister(rest_store, "alpha", actor="deploy", why="destroyed")
    trail = db.query("SELECT trigger, strategy, result, actor, team, target FROM platform_actions ORDER BY ts, id")
    assert [(r["trigger"], r["strategy"], r["team"], r["target"]) for r in trail] == [
        ("registered", "update_registry", "alpha", "alpha"), ("re-registered", "update_registry", "alpha", "alpha"),
        ("destroyed", "deregister", "alpha", "alpha")]
    assert len(db.query("SELECT id FROM notify_events")) == 3  # each with its alert, in the same call
    assert db.query("SELECT name FROM registry_capabilities") == []


def test_import_card_over_rest(db, project, envs, card_server):  # noqa: F811
    _server, base = card_server
    _Cards.routes = {"/a/.well-known/agent-card.json": json.dumps(CARD).encode()}
    got = json.loads(_run(project, envs["rest"], "registry", "import-card", f"{base}/a", "--json").stdout)
    assert (got["name"], got["kind"]) == ("research-agent", "agent")
    row, caps = _entry(db, "research-agent")
    assert row["source"] == "import-card" and caps == ["research"]
    assert json.loads(row["metadata"])["card"] == CARD


def test_gateway_keys_over_rest(rest, db, project, envs):
    res = _run(project, envs["rest"], "--debug", "gateway", "key", "create", "alpha", "--expires", "30d", "--json")
    made = json.loads(res.stdout)
    raw, prefix = made["key"], made["prefix"]
    assert raw[13:] not in res.stderr and res.stdout.count(raw[13:]) == 1  # shown once, in no log line
    stored = db.query("SELECT hash, team, revision, revoked_at FROM gateway_keys")
    assert stored == [{"hash": hashlib.sha256(raw.encode()).hexdigest(), "team": "alpha", "revision": None,
                       "revoked_at": None}]
    assert "/rest/v1/rpc/elfctl_key_create" in {r["path"] for r in rest.requests}
    assert raw not in json.dumps(rest.requests) and raw[13:] not in json.dumps(rest.requests)  # the hash only
    listed = _run(project, envs["rest"], "gateway", "key", "list", "--json")
    assert raw[13:] not in listed.stdout + listed.stderr
    assert [k["prefix"] for k in json.loads(listed.stdout)] == [prefix]

    _run(project, envs["rest"], "gateway", "key", "revoke", prefix)
    assert db.query("SELECT revoked_at IS NOT NULL AS gone FROM gateway_keys") == [{"gone": True}]
    again = _run(project, envs["rest"], "gateway", "key", "revoke", prefix, "--json", code=1)
    assert json.loads(again.stdout)["error"]["message"] == f"key {prefix}: already revoked"
    _run(project, envs["rest"], "gateway", "key", "revoke", "0123abcd", code=1)
    before = db.query("SELECT * FROM gateway_keys")
    for bad in (("create", "Bad_Team"), ("create", "alpha", "--expires", "2001-01-01"), ("revoke", "xyz")):
        _run(project, envs["rest"], "gateway", "key", *bad, code=2)
    assert db.query("SELECT * FROM gateway_keys") == before


def test_notify_list_and_retry_over_rest(rest_store, db, project, envs):
    outbox._seen.clear()
    for i in range(3):
        outbox.emit(rest_store, Event("test.kind", f"event {i}", dedupe_key=f"op-{i}", severity="critical"))
    ids = [r["id"] for r in db.query("SELECT id FROM notify_events ORDER BY ts, id")]
    for event_id in ids[:2]:
        db.execute("INSERT INTO notify_deliveries (event_id, channel, state, attempts, last_error, updated_at) "
                   "VALUES (?, 'webhook:x', 'failed', 5, 'HTTP 500', '2026-01-01T00:00:00Z')", [event_id])
    db.execute("INSERT INTO notify_channels (channel, disabled_at, reason) VALUES ('webhook:y', "
               "'2026-01-01T00:00:00Z', '410 Gone')")
    for args in (("notify", "list", "--json"), ("notify", "list", "--failed", "--json")):
        over = json.loads(_run(project, envs["rest"], *args).stdout)
        assert over == json.loads(_run(project, envs["postgres"], *args).stdout)
    failed = json.loads(_run(project, envs["rest"], "notify", "list", "--failed", "--json").stdout)
    assert sorted(e["id"] for e in failed["events"]) == sorted(ids[:2])
    assert [c["channel"] for c in failed["disabled"]] == ["webhook:y"]

    _run(project, envs["rest"], "notify", "retry", ids[0])
    assert db.query("SELECT event_id, state, attempts FROM notify_deliveries ORDER BY state") == [
        {"event_id": ids[1], "state": "failed", "attempts": 5}, {"event_id": ids[0], "state": "pending", "attempts": 0}]
    assert db.query("SELECT channel FROM notify_channels") == [{"channel": "webhook:y"}]
    _run(project, envs["rest"], "notify", "retry", "--enable")
    assert db.query("SELECT state FROM notify_deliveries") == [{"state": "pending"}] * 2
    assert db.query("SELECT channel FROM notify_channels") == []
