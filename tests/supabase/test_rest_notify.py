"""The alert sender over Supabase's REST API (migration 0150): the due read (events joined to their
deliveries), the claim (a lease taken only when free) and the outcome (with a 410's channel disable)
are one `rpc` each; `elfctl notify send` runs with only SUPABASE_URL/SUPABASE_KEY. Receivers are the
loopback webhook server; results are read directly from the database behind the API."""

from __future__ import annotations

import json
import threading

import pytest

from elfctl.domain import notify as rules
from elfctl.domain.notify import Event
from elfctl.services.notify import outbox, sender
from tests.conftest import run_elfctl
from tests.notify.test_notify import hook  # noqa: F401 - the loopback webhook receiver


@pytest.fixture(autouse=True)
def _fresh_process_memo():
    outbox._seen.clear()


def _post():
    from elfctl.bootstrap import webhook_poster

    return webhook_poster()


def test_notify_send_over_rest_delivers_each_event_once(rest, rest_store, db, project, hook):  # noqa: F811
    with open(project / "elfctl.toml", "a") as f:
        f.write(f'\n[notify]\nwebhooks = ["{hook.url("/ops")}"]\n')
    outbox.emit(rest_store, Event("test.kind", "disk full on node-1", dedupe_key="rest-send-1", severity="critical"))
    env = {"SUPABASE_URL": rest.url, "SUPABASE_KEY": rest.service_key, "ELFCTL_STORE_URL": ""}
    proc = run_elfctl("notify", "send", "--json", cwd=project, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["sent"] == 1
    assert [r["json"]["title"] for r in hook.received] == ["disk full on node-1"]
    assert db.query("SELECT state, attempts FROM notify_deliveries") == [{"state": "sent", "attempts": 1}]
    again = run_elfctl("notify", "send", "--json", cwd=project, env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["sent"] == 0, again.stdout + again.stderr
    assert len(hook.received) == 1
    assert "SUPABASE_DB_URL" not in proc.stderr + again.stderr
    assert rest.service_key not in proc.stdout + proc.stderr
    paths = {r["path"] for r in rest.requests}
    assert {"/rest/v1/rpc/elfctl_notify_due", "/rest/v1/rpc/elfctl_notify_claim",
            "/rest/v1/rpc/elfctl_notify_settle"} <= paths


def test_a_410_over_rest_disables_the_channel_with_its_failed_delivery(rest_store, db, hook):  # noqa: F811
    chans = [rules.channel("webhook", hook.url("/gone"))]
    outbox.emit(rest_store, Event("test.kind", "one", dedupe_key="gone-1"))
    hook.behave(status=410)
    got = sender.deliver(rest_store, chans, _post())
    assert got.disabled == [chans[0].label] and got.failed == 1
    assert [r["channel"] for r in db.query("SELECT channel FROM notify_channels")] == [chans[0].id]
    assert db.query("SELECT state FROM notify_deliveries") == [{"state": "failed"}]
    outbox.emit(rest_store, Event("test.kind", "two", dedupe_key="gone-2"))
    assert sender.deliver(rest_store, chans, _post()).sent == 0
    assert len(hook.received) == 1  # the disabled channel is not called again


def test_two_senders_over_rest_post_each_event_once(rest, rest_store, hook):  # noqa: F811
    """Two senders (two REST clients, as two processes would be) race over 20 events: the claim is one
    call into the database, so each event reaches the receiver once."""
    from elfctl.adapters.supabase_rest import RestStore

    chans = [rules.channel("webhook", hook.url("/race"))]
    for i in range(20):
        outbox.emit(rest_store, Event("test.kind", f"race {i}", dedupe_key=f"race-{i}"))
    hook.behave(stall=0.02)
    stores = [RestStore(rest.url, rest.service_key) for _ in range(2)]
    reports = []
    threads = [threading.Thread(target=lambda s=s: reports.append(sender.deliver(s, chans, _post())))
               for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    ids = [r["json"]["id"] for r in hook.received]
    assert len(ids) == 20 and len(set(ids)) == 20
    assert sum(r.sent for r in reports) == 20


def test_the_due_read_skips_what_another_sender_holds_and_returns_it_after_the_lease(rest_store, db):
    import datetime as dt

    from elfctl.domain.clock import now

    outbox.emit(rest_store, Event("test.kind", "held", dedupe_key="held-1"))
    at = now()
    [(ev, ch, tried)] = outbox.due(rest_store, ["webhook:x"], at)
    assert outbox.claim(rest_store, ev.id, ch, tried, at, lease_s=30) is True
    assert outbox.claim(rest_store, ev.id, ch, tried, at, lease_s=30) is False  # the other sender
    assert outbox.due(rest_store, ["webhook:x"], at) == []
    later = at + dt.timedelta(seconds=31)  # the holder was killed mid-post: due again after its lease
    assert [e.id for e, _c, _t in outbox.due(rest_store, ["webhook:x"], later)] == [ev.id]
