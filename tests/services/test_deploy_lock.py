"""The deploy lease on SQLite and Postgres: exclusive, renewed, released, recovered when stale, fenced once lost."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time

import pytest
from tests.conftest import kill_unreaped

from elfctl.errors import LeaseLost, LockTimeout
from elfctl.services.deploy import lock as deploy_lock
from elfctl.services.platform.migrate import migrate


@pytest.fixture
def store(store_url, open_store, project):
    from elfctl import config
    from elfctl.bootstrap import migrations_dir

    s = open_store(store_url)
    migrate(s, migrations_dir(config.load(cwd=project)))
    return s


def _held_by(store, owner: str, host: str, pid: int, stamp: str) -> None:
    """A lease row as another process left it: acquired, last renewed and expiring at `stamp`."""
    store.execute(
        "INSERT INTO deploy_locks (team, owner, host, pid, acquired_at, heartbeat_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("team-a", owner, host, pid, stamp, stamp, stamp),
    )


def test_one_holder_at_a_time_and_release(store):
    assert deploy_lock.try_acquire(store, "team-a", "one", 30) is None
    held = deploy_lock.try_acquire(store, "team-a", "two", 30)
    assert held.owner == "one" and held.pid == os.getpid() and held.host == socket.gethostname()
    assert deploy_lock.try_acquire(store, "team-b", "two", 30) is None  # per team
    deploy_lock.release(store, "team-a", "two")  # not the owner: no effect
    assert deploy_lock.holder(store, "team-a").owner == "one"
    deploy_lock.release(store, "team-a", "one")
    assert deploy_lock.try_acquire(store, "team-a", "two", 30) is None


def test_lease_context_times_out_naming_the_holder(store):
    with deploy_lock.lease(store, "team-a", "alice@ci", ttl_s=30):
        with pytest.raises(LockTimeout) as err:
            with deploy_lock.lease(store, "team-a", "bob@laptop", ttl_s=30, wait_s=0.3, poll_s=0.05):
                pass
        assert "alice@ci" in err.value.message and "--lock-wait" in err.value.hint
    assert deploy_lock.holder(store, "team-a") is None


def test_expired_lease_of_another_host_is_taken_over(store):
    past = deploy_lock.iso(deploy_lock.now() - dt.timedelta(seconds=5))
    _held_by(store, "gone", "other-host", 1, past)
    assert deploy_lock.try_acquire(store, "team-a", "me", 30) is None
    assert deploy_lock.holder(store, "team-a").owner == "me"


def test_live_lease_of_another_host_is_respected(store):
    future = deploy_lock.iso(deploy_lock.now() + dt.timedelta(seconds=60))
    _held_by(store, "busy", "other-host", 1, future)
    assert deploy_lock.try_acquire(store, "team-a", "me", 30).owner == "busy"


def test_dead_process_on_this_host_loses_its_lease_at_once(store):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    future = deploy_lock.iso(deploy_lock.now() + dt.timedelta(seconds=600))
    _held_by(store, "killed", socket.gethostname(), proc.pid, future)
    assert deploy_lock.try_acquire(store, "team-a", "me", 30) is None


def test_heartbeat_extends_the_lease(store):
    with deploy_lock.lease(store, "team-a", "me", ttl_s=0.6):
        first = deploy_lock.holder(store, "team-a").expires_at
        time.sleep(0.5)
        assert deploy_lock.holder(store, "team-a").expires_at > first


def test_zombie_holder_on_this_host_loses_its_lease_at_once(store):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        kill_unreaped(proc)
        future = deploy_lock.iso(deploy_lock.now() + dt.timedelta(seconds=600))
        _held_by(store, "zombie", socket.gethostname(), proc.pid, future)
        assert deploy_lock.try_acquire(store, "team-a", "me", 30) is None
    finally:
        proc.wait()


def _expire(store, team: str) -> None:
    """What a stalled heartbeat leaves: the row's expiry in the past."""
    past = deploy_lock.iso(deploy_lock.now() - dt.timedelta(seconds=1))
    store.execute("UPDATE deploy_locks SET expires_at = ? WHERE team = ?", (past, team))


def test_a_lease_taken_over_refuses_the_switch_and_every_write(store):
    store.execute("CREATE TABLE fenced_writes (n INTEGER)")
    with deploy_lock.lease(store, "team-a", "first", ttl_s=30) as held:
        with held.write() as tx:
            tx.execute("INSERT INTO fenced_writes (n) VALUES (1)")
        _expire(store, "team-a")
        assert deploy_lock.try_acquire(store, "team-a", "second", 30) is None
        with pytest.raises(LeaseLost) as err:
            held.renew()
        assert "another deploy took it over" in err.value.message and "before the switch" in err.value.message
        with pytest.raises(LeaseLost):
            with held.write() as tx:
                tx.execute("INSERT INTO fenced_writes (n) VALUES (2)")
    assert [r["n"] for r in store.query("SELECT n FROM fenced_writes")] == [1]
    assert deploy_lock.holder(store, "team-a").owner == "second"  # the lost holder's exit released nothing


def test_an_expired_lease_nobody_took_is_renewed_and_then_respected(store):
    with deploy_lock.lease(store, "team-a", "first", ttl_s=30) as held:
        _expire(store, "team-a")
        held.renew()  # still the owner: the lease is extended, not lost
        assert deploy_lock.try_acquire(store, "team-a", "second", 30).owner.startswith("first")


def test_takeover_compares_the_expiry_it_saw(store, monkeypatch):
    """A holder that renews between a taker's read and its update keeps the lease."""
    assert deploy_lock.try_acquire(store, "team-a", "first", 30) is None
    _expire(store, "team-a")
    seen = deploy_lock.holder(store, "team-a")
    assert deploy_lock.renew(store, "team-a", "first", 30)
    reads = iter([seen])  # the taker read the row before the renewal
    real = deploy_lock.holder
    monkeypatch.setattr(deploy_lock, "holder", lambda s, t: next(reads, None) or real(s, t))
    assert deploy_lock.try_acquire(store, "team-a", "second", 30).owner == "first"
