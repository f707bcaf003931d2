"""The audit trail of automatic actions on real SQLite and Postgres."""

import datetime as dt

from elfctl import config
from elfctl.bootstrap import migrations_dir
from elfctl.services.actions import trail
from elfctl.services.platform import migrate


def test_actions_are_recorded_scrubbed_and_listed_newest_first(store_url, open_store, project):
    from elfctl import redact

    store = open_store(store_url)
    migrate.migrate(store, migrations_dir(config.load(cwd=project)))
    redact.register_secret("sk-canary-7f3a9b")
    t0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
    with store.transaction() as tx:
        trail.record(tx, trail.Action("memory", "93% of 64 MiB", "scale_down", "ok", "resources --apply",
                                      team="seo", target="replicas 2 -> 1", ts=trail.iso(t0)))
    trail.record(store, trail.Action("api_quota", "429 from openai key sk-canary-7f3a9b", "queue_request",
                                     "queued", "gateway", team="ads", ts=trail.iso(t0 + dt.timedelta(minutes=1))))
    rows = trail.recent(store)
    assert [(r.strategy, r.team) for r in rows] == [("queue_request", "ads"), ("scale_down", "seo")]
    assert "sk-canary-7f3a9b" not in rows[0].trigger
    assert [r.team for r in trail.recent(store, team="seo")] == ["seo"]
    assert [r.team for r in trail.recent(store, since=t0 + dt.timedelta(seconds=30))] == ["ads"]
