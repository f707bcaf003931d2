"""Alerts: the outbox on real SQLite and Postgres, delivered over real HTTP to a loopback receiver
that records, fails with 500, stalls, and answers 410."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import random
import threading

import pytest
from tests.conftest import run_elfctl
from tests.webhook_server import WebhookServer


@pytest.fixture
def hook():
    server = WebhookServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_process_memo():
    """Each test is a new process for the outbox's per-process memo of keys it wrote."""
    from elfctl.services.notify import outbox

    outbox._seen.clear()


@pytest.fixture
def app(store_url, project, monkeypatch):
    """An App on a migrated store (both dialects)."""
    from elfctl.app import App
    from elfctl.output import Output
    from elfctl.services.platform import migrate

    monkeypatch.setenv("ELFCTL_STORE_URL", store_url)
    a = App(Output(quiet=True), cwd=project)
    migrate.migrate(a.store, a.migrations_dir)
    yield a
    a.close()


def _event(key: str, **kw):
    from elfctl.domain.notify import Event

    return Event(kw.pop("kind", "test.kind"), kw.pop("title", f"title {key}"), dedupe_key=key, **kw)


def test_an_event_is_queued_once_per_key_and_reaches_slack_and_a_signed_webhook(app, hook, monkeypatch):
    from elfctl.services.notify import app as notify
    from elfctl.services.notify import outbox

    monkeypatch.setenv("SLACK_WEBHOOK_URL", hook.url("/services/T000/B000/slacksecret"))
    monkeypatch.setenv("ELFCTL_NOTIFY_WEBHOOKS", hook.url("/generic"))
    monkeypatch.setenv("ELFCTL_NOTIFY_WEBHOOK_SECRET", "hmac-key-1")
    app.__dict__.pop("config", None)
    ev = _event("budget.soft:ads:day:2026-11-27", kind="budget.soft", team="ads",
                title="team ads passed 80% of its daily budget", details={"limit": "$1.00", "log tail": "a\nb"})
    assert outbox.emit(app.store, ev) is True
    outbox._seen.clear()  # another process: the store's unique key still keeps one row
    assert outbox.emit(app.store, ev) is False

    report = notify.send(app)
    assert (report.sent, report.failed, report.retrying) == (2, 0, 0)
    by_path = {r["path"]: r for r in hook.received}
    slack = by_path["/services/T000/B000/slacksecret"]["json"]
    assert slack["text"].endswith("team ads passed 80% of its daily budget")
    assert slack["blocks"][0]["type"] == "section" and slack["blocks"][-1]["type"] == "context"
    assert any("```a\nb```" in b.get("text", {}).get("text", "") for b in slack["blocks"])  # log tail as code
    generic = by_path["/generic"]
    body, headers = generic["raw"], generic["headers"]
    want = hmac.new(b"hmac-key-1", headers["X-Elfctl-Timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Elfctl-Signature"] == "sha256=" + want
    assert generic["json"]["kind"] == "budget.soft" and generic["json"]["team"] == "ads"
    assert notify.send(app).sent == 0  # delivered once: nothing due any more
    listed = notify.listing(app, failed_only=False)
    assert "slacksecret" not in json.dumps(listed)  # the Slack URL is a secret: channels show by digest


def test_a_receiver_that_is_down_loses_nothing_and_retry_sends_it_later(app, hook, monkeypatch):
    from elfctl.domain import notify as rules
    from elfctl.services.notify import outbox, sender

    chans = [rules.channel("webhook", hook.url("/down"))]
    outbox.emit(app.store, _event("down-1"))
    hook.behave(status=500)
    at, rng = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC), random.Random(1)
    for _attempt in range(1, rules.MAX_ATTEMPTS + 1):
        got = sender.deliver(app.store, chans, app.webhook_post, at=at, rng=rng)
        assert got.sent == 0 and "HTTP 500" in got.errors[0]
        assert sender.deliver(app.store, chans, app.webhook_post, at=at, rng=rng).errors == []  # not due yet
        at += dt.timedelta(seconds=rules.CAP_S + 1)
    assert got.failed == 1 and len(hook.received) == rules.MAX_ATTEMPTS
    failed = outbox.listing(app.store, failed_only=True)
    assert [e["title"] for e in failed] == ["title down-1"] and failed[0]["deliveries"][0]["attempts"] == 5

    hook.behave(status=200)
    assert outbox.retry(app.store) == 1
    assert sender.deliver(app.store, chans, app.webhook_post, at=at).sent == 1
    assert outbox.listing(app.store, failed_only=True) == []


def test_410_disables_the_channel_until_enabled_again(app, hook):
    from elfctl.domain import notify as rules
    from elfctl.services.notify import outbox, sender

    chans = [rules.channel("webhook", hook.url("/gone"))]
    outbox.emit(app.store, _event("gone-1"))
    hook.behave(status=410)
    got = sender.deliver(app.store, chans, app.webhook_post)
    assert got.disabled == [chans[0].label] and got.failed == 1
    outbox.emit(app.store, _event("gone-2"))
    assert sender.deliver(app.store, chans, app.webhook_post).sent == 0
    assert len(hook.received) == 1  # the disabled channel is not called again
    hook.behave(status=200)
    assert outbox.retry(app.store, enable=True) == 1
    assert sender.deliver(app.store, chans, app.webhook_post).sent == 2


def test_a_stalled_receiver_is_cut_at_the_timeout_and_tried_again(app, hook):
    from elfctl.domain import notify as rules
    from elfctl.services.notify import outbox, sender

    chans = [rules.channel("webhook", hook.url("/slow"))]
    outbox.emit(app.store, _event("slow-1"))
    hook.behave(stall=3)
    got = sender.deliver(app.store, chans, app.webhook_post, timeout_s=0.3)
    assert got.retrying == 1 and "no answer" in got.errors[0]
    assert outbox.listing(app.store)[0]["deliveries"][0]["state"] == "pending"


def test_two_senders_at_once_post_each_event_once(app, hook):
    from elfctl.domain import notify as rules
    from elfctl.services.notify import outbox, sender

    chans = [rules.channel("webhook", hook.url("/race"))]
    for i in range(20):
        outbox.emit(app.store, _event(f"race-{i}"))
    hook.behave(stall=0.02)
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(sender.deliver(app.store, chans, app.webhook_post)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [r["json"]["id"] for r in hook.received]
    assert len(ids) == 20 and len(set(ids)) == 20
    assert sum(r.sent for r in reports) == 20


def test_automatic_actions_become_alerts_in_the_same_transaction(app):
    from elfctl.services.actions import trail
    from elfctl.services.notify import outbox

    with app.store.transaction() as tx:
        trail.record(tx, trail.Action("docker", "memory 96% of 64 MiB", "scale_down", "ok", "resources --apply",
                                      team="seo", target="replicas 2 -> 1"))
    with pytest.raises(RuntimeError), app.store.transaction() as tx:
        trail.record(tx, trail.Action("docker", "x", "scale_down", "ok", "test"))
        raise RuntimeError("rolled back")
    events = outbox.listing(app.store)
    assert [(e["kind"], e["team"]) for e in events] == [("action.scale_down", "seo")]
    assert "replicas 2 -> 1" in events[0]["title"]


def test_budget_crossings_alert_once_per_window_and_team(app):
    """Reservations past the soft limit, then refused at the hard one: one alert of each."""
    from elfctl.domain.budget import Budget
    from elfctl.services.cost import budgets
    from elfctl.services.notify import outbox

    b = Budget(team="ads", daily_nanousd=1000, soft_ratio=0.5)
    budgets.set_budget(app.store, b)
    for _ in range(4):  # 400 of 1000 reserved each: soft at the 2nd, refused at the 3rd and 4th
        try:
            budgets.reserve(app.store, b, 400, 60)
        except budgets.Refused:
            pass
    kinds = [e["kind"] for e in outbox.listing(app.store)]
    assert sorted(kinds) == ["budget.hard", "budget.soft"]


def test_a_command_that_queued_alerts_starts_a_sender_and_returns(project, hook):
    """`creds check` finds an expiring credential: the alert arrives after the command returned."""
    env = {"SLACK_WEBHOOK_URL": hook.url("/slack/T1/B1/xyz"), "ELFCTL_CREDS_BACKEND": "file",
           "ELFCTL_MASTER_KEY": "pass-phrase-for-tests"}
    assert run_elfctl("db", "migrate", cwd=project, env=env).returncode == 0
    proc = run_elfctl("creds", "set", "OPENAI_API_KEY", "--stdin", "--expires", "2d", cwd=project, env=env,
                      input="sk-canary-notify-1\n")
    assert proc.returncode == 0, proc.stderr
    proc = run_elfctl("creds", "check", cwd=project, env=env)
    assert proc.returncode == 0, proc.stderr
    assert hook.wait_for(1, timeout=30)
    text = hook.received[0]["json"]["text"]
    assert "OPENAI_API_KEY" in text and "expires soon" in text
    assert "sk-canary-notify-1" not in json.dumps(hook.received[0]["json"])
    run_elfctl("creds", "check", cwd=project, env=env)  # the same finding again: no second alert
    assert not hook.wait_for(2, timeout=3)
    shown = run_elfctl("config", "show", cwd=project, env=env).stdout
    assert "xyz" not in shown


def test_notify_test_without_a_channel_is_exit_2_and_with_a_dead_one_exit_1(project, hook):
    assert run_elfctl("db", "migrate", cwd=project).returncode == 0
    proc = run_elfctl("notify", "test", cwd=project)
    assert proc.returncode == 2 and "no alert channel configured" in proc.stderr
    hook.behave(status=500)
    proc = run_elfctl("--json", "notify", "test", cwd=project, env={"ELFCTL_NOTIFY_WEBHOOKS": hook.url("/x")})
    out = json.loads(proc.stdout)
    assert proc.returncode == 1 and out["retrying"] == 1 and out["error"]["code"] == "notify_failed"
    proc = run_elfctl("notify", "test", cwd=project, env={"ELFCTL_NOTIFY_WEBHOOKS": "ftp://example.org/x"})
    assert proc.returncode == 2 and "notify.webhooks" in proc.stderr and "Traceback" not in proc.stderr


def test_health_warns_about_a_disabled_channel_and_failed_alerts(project, hook):
    env = {"ELFCTL_NOTIFY_WEBHOOKS": hook.url("/h")}
    assert run_elfctl("db", "migrate", cwd=project).returncode == 0
    ok = json.loads(run_elfctl("health", "--json", "--component", "notify", cwd=project, env=env).stdout)
    assert ok["checks"]["notify"][0]["status"] == "pass"
    hook.behave(status=410)
    assert run_elfctl("notify", "test", cwd=project, env=env).returncode == 1
    proc = run_elfctl("health", "--json", "--component", "notify", cwd=project, env=env)
    check = json.loads(proc.stdout)["checks"]["notify"][0]
    assert check["status"] == "warn" and "disabled by the receiver (410)" in check["output"]
    assert "notify" not in json.loads(run_elfctl("health", "--json", cwd=project).stdout)["checks"]
