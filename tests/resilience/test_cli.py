"""`elfctl audit actions`, `elfctl queue list|drop`, as a user runs them: output, --json, filters,
and bad input (exit 2, one line naming the flag, nothing changed)."""

from __future__ import annotations

import datetime as dt
import json

from elfctl.domain.clock import now
from elfctl.services.actions import trail


def _act(store, team, hours_ago, strategy="retry"):
    trail.record(store, trail.Action("api_quota", "429 from openai", strategy, "ok", "gateway", team, "gpt-4o",
                                     ts=(now() - dt.timedelta(hours=hours_ago)).isoformat(timespec="milliseconds")))


def test_audit_actions_filters_by_time_and_team(res_store, cli):
    _act(res_store, "marketing", 30)
    _act(res_store, "marketing", 1, "switch_provider")
    _act(res_store, "research", 2, "use_cache")
    r = cli("audit", "actions", "--json")
    assert r.exit_code == 0
    assert [a["strategy"] for a in json.loads(r.stdout)] == ["switch_provider", "use_cache", "retry"]
    r = cli("audit", "actions", "--since", "24h", "--team", "marketing", "--json")
    assert [(a["team"], a["strategy"]) for a in json.loads(r.stdout)] == [("marketing", "switch_provider")]
    r = cli("audit", "actions", "--since", (now() - dt.timedelta(hours=3)).date().isoformat())
    assert r.exit_code == 0 and "use_cache" in r.stdout
    r = cli("audit", "actions", "--team", "nobody")
    assert r.exit_code == 0 and "no actions recorded" in r.stdout


def test_audit_actions_bad_input(res_store, elfctl, project):
    for args, said in ((["--since", "yesterday"], "--since 'yesterday': neither a duration nor a date"),
                       (["--team", "Not_A_Team"], "is not a DNS-1123 label"),
                       (["--limit", "0"], "--limit")):
        r = elfctl("audit", "actions", *args, cwd=project)
        assert r.returncode == 2, (args, r.stderr)
        assert said in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_failure_naming_a_secret_is_audited_without_it(res_store, cli):
    from elfctl.redact import register_secret
    from elfctl.resilience import FallbackFailed, fallback

    key = "sk-test-" + "k3y" * 12
    register_secret(key)  # as elfctl does for every credential it resolves

    @fallback("orders-db", ["retry"], policy="quick")
    def query():
        raise ConnectionError(f"postgresql://app:hunter2@db:5432/orders refused; api key {key}")

    try:
        query()
    except FallbackFailed as exc:
        assert key not in exc.message
    r = cli("audit", "actions", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)[0]["strategy"] == "retry"
    assert key not in r.stdout and "hunter2" not in r.stdout
    assert "db:5432/orders refused" in r.stdout  # the rest of the message is kept


def test_queue_drop_by_id_and_unknown_id(res_store, cli):
    from elfctl.services.resilience import queue

    a = queue.enqueue(res_store, "mail", "mod:send", '{"args":[1],"kwargs":{}}', limit=5)
    b = queue.enqueue(res_store, "mail", "mod:send", '{"args":[2],"kwargs":{}}', limit=5)
    r = cli("queue", "drop", "nope", "--json")
    assert r.exit_code == 2 and json.loads(r.stdout)["error"]["code"] == "not_found"
    assert len(queue.listing(res_store)) == 2  # nothing changed
    r = cli("queue", "drop")
    assert r.exit_code == 2 and "give entry ids, --resource NAME, or --all" in r.output
    r = cli("queue", "drop", a, "--json")
    assert r.exit_code == 0 and [e["id"] for e in json.loads(r.stdout)] == [a]
    assert [e.id for e in queue.listing(res_store)] == [b]
    assert queue.pending(res_store, "mail") == 1
    r = cli("queue", "list")
    assert "mod:send" in r.stdout and "queued" in r.stdout


def test_empty_store_reads(res_store, cli):
    assert "no queued requests" in cli("queue", "list").stdout
    assert "nothing to drain" in cli("queue", "drain").stdout
    assert json.loads(cli("breakers", "list", "--json").stdout) == []
