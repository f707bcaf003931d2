"""The registry's store API (services/registry/entries.py) on real SQLite and Postgres: liveness the
Consul way with short real TTLs and a fake clock for long ones, the sweep and its trail rows."""

import datetime as dt
import time

import pytest

from elfctl import config
from elfctl.bootstrap import migrations_dir
from elfctl.domain.registry import Entry
from elfctl.errors import InputError
from elfctl.services.actions import trail
from elfctl.services.platform import migrate
from elfctl.services.registry import entries as reg

T0 = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(store_url, open_store, project):
    s = open_store(store_url)
    migrate.migrate(s, migrations_dir(config.load(cwd=project)))
    return s


def test_register_find_by_capability_kind_owner_and_status(store):
    reg.register(store, Entry("seo", kind="team", url="http://elf-seo:8080", capabilities=("seo", "copy"),
                              owner="growth"))
    reg.register(store, Entry("pg", kind="database", url="postgresql://db:5432/x", capabilities=("sql",)))
    reg.register(store, Entry("files", kind="mcp", url="http://mcp:9000/mcp", metadata={"transport": "http"}))
    assert [e.name for e in reg.find(store, capability="seo")] == ["seo"]
    assert [e.name for e in reg.find(store, kind="mcp")] == ["files"]
    assert reg.get(store, "files").metadata == {"transport": "http"}
    assert [e.name for e in reg.find(store, owner="growth")] == ["seo"]
    assert [e.name for e in reg.find(store, status="passing")] == ["files", "pg", "seo"]
    assert reg.find(store, capability="nothing") == []
    # re-registering replaces its capabilities
    reg.register(store, Entry("seo", kind="team", url="http://elf-seo:8080", capabilities=("ads",)))
    assert reg.find(store, capability="seo") == []
    assert [e.name for e in reg.find(store, capability="ads")] == ["seo"]


def test_names_are_unique_across_kinds_and_loops_refused_nothing_written(store):
    reg.register(store, Entry("seo", kind="team", url="http://seo:80"))
    with pytest.raises(InputError, match="registered already as a team"):
        reg.register(store, Entry("seo", kind="database", url="postgresql://x:1/y"))
    reg.register(store, Entry("a", url="http://a:1", depends_on=("b",)))
    reg.register(store, Entry("b", url="http://b:1", depends_on=("c",)))
    with pytest.raises(InputError, match=r"depends_on loop c -> a -> b -> c"):
        reg.register(store, Entry("c", url="http://c:1", depends_on=("a",)))
    assert reg.get(store, "c") is None
    assert reg.get(store, "seo").kind == "team"


def test_ttl_short_and_real_passing_warning_critical(store):
    reg.register(store, Entry("beat", url="http://b:1", ttl_s=1.0))
    assert reg.get(store, "beat").status == "passing"
    time.sleep(0.6)  # more than half the TTL: late
    assert reg.get(store, "beat").status == "warning"
    time.sleep(0.6)
    got = reg.get(store, "beat")
    assert (got.status, "no heartbeat") == ("critical", got.reason[:12])
    reg.heartbeat(store, "beat")
    assert reg.get(store, "beat").status == "passing"
    reg.heartbeat(store, "beat", "warn", note="queue 80% full")
    assert (reg.get(store, "beat").status, reg.get(store, "beat").reason) == ("warning", "queue 80% full")


def test_long_ttl_fake_clock_removed_after_deregister_after_and_sweep_records(store):
    reg.register(store, Entry("slow", url="http://s:1", ttl_s=3600, deregister_after_s=86400), at=T0)
    reg.register(store, Entry("keep", url="http://k:1"), at=T0)
    assert reg.get(store, "slow", at=T0 + dt.timedelta(minutes=59)).status == "warning"
    assert reg.get(store, "slow", at=T0 + dt.timedelta(hours=2)).status == "critical"
    later = T0 + dt.timedelta(hours=1, days=1, seconds=1)
    assert reg.get(store, "slow", at=later) is None  # gone at read time, before any sweep
    assert [e.name for e in reg.find(store, at=later)] == ["keep"]
    removed, changed = reg.sweep(store, "registry sweep", at=later)
    assert removed == ["slow"] and changed == []
    assert store.query("SELECT name FROM registry_entries ORDER BY name") == [{"name": "keep"}]
    rows = trail.recent(store)
    assert [(r.resource, r.strategy, r.target, r.actor) for r in rows] == [
        ("registry", "deregister", "slow", "registry sweep")]
    assert reg.sweep(store, "registry sweep", at=later) == ([], [])


def test_sweep_records_a_status_change_once(store):
    reg.register(store, Entry("svc", url="http://s:1", ttl_s=60), at=T0)
    at = T0 + dt.timedelta(seconds=61)
    assert reg.sweep(store, "health", at=at) == ([], [("svc", "passing", "critical")])
    assert reg.sweep(store, "health", at=at) == ([], [])
    (row,) = trail.recent(store)
    assert (row.trigger, row.target) == ("status passing -> critical", "svc")


def test_heartbeat_unknown_entry_and_bad_status(store):
    from elfctl.services.registry.entries import NotRegistered

    with pytest.raises(NotRegistered, match="no entry 'ghost'"):
        reg.heartbeat(store, "ghost")
    reg.register(store, Entry("x", url="http://x:1"))
    with pytest.raises(InputError, match="--status 'ok'"):
        reg.heartbeat(store, "x", "ok")


def test_platform_probe_heartbeat_records_only_changes(store):
    reg.register(store, Entry("seo", kind="team", url="http://seo:1", ttl_s=30), actor="deploy")
    reg.heartbeat(store, "seo", "pass", actor="registry probe")
    reg.heartbeat(store, "seo", "fail", note="GET /health: connection refused", actor="registry probe")
    reg.heartbeat(store, "seo", "fail", note="GET /health: connection refused", actor="registry probe")
    rows = trail.recent(store, team="seo")
    assert [(r.trigger, r.actor) for r in rows] == [
        ("status passing -> critical", "registry probe"), ("registered", "deploy")]


def test_metadata_must_be_json(store):
    with pytest.raises(InputError, match="metadata is not JSON"):
        reg.register(store, Entry("odd", kind="mcp", url="http://m:1", metadata={"when": dt.datetime.now()}))
    assert reg.get(store, "odd") is None
