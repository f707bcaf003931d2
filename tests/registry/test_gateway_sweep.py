"""The gateway sweeps, on SQLite and Postgres: on an idle platform (nobody heartbeating, nobody reading
the registry) an entry's TTL running out and its deregister_after passing reach the actions trail,
one row per transition, from real `elfctl gateway serve` processes; two gateways on one store write
each transition once and (Postgres: the prober's advisory lock) never probe one team twice in a period."""

from __future__ import annotations

import threading
import time

from elfctl.adapters import http_health
from elfctl.domain.registry import Entry
from elfctl.services.actions import trail
from elfctl.services.registry import entries as reg
from elfctl.services.registry.prober import TURN_LOCK, Prober
from tests.registry.test_prober import Team, deployed, teams  # noqa: F401 (teams: a fixture)


def _idle(store, name: str = "idle") -> None:
    """An entry registered by hand with a 2 s TTL and removed 4 s after that, and nobody to heartbeat."""
    reg.register(store, Entry(name, kind="service", url="http://127.0.0.1:9/", ttl_s=2, deregister_after_s=4))


def _registry_rows(store, name: str) -> list[tuple[str, str, str]]:
    return [(r.actor, r.strategy, r.trigger) for r in reversed(trail.recent(store, limit=200))
            if r.resource == "registry" and r.target == name]


def _gone(store, name: str) -> bool:
    return not store.query("SELECT name FROM registry_entries WHERE name = ?", (name,))


def _wait_gone(store, name: str, limit_s: float = 40.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and not _gone(store, name):
        time.sleep(0.2)


WARNED = [("gateway sweep", "update_registry", "status passing -> warning"),
          ("gateway sweep", "update_registry", "status warning -> critical"),
          ("gateway sweep", "deregister", "critical for 4s (deregister_after)")]
# On a loaded machine a sweep may come only after the TTL, past the warning half: straight to critical.
UNWARNED = [("gateway sweep", "update_registry", "status passing -> critical"), WARNED[2]]


def test_an_idle_gateway_turns_an_expired_entry_critical_then_removes_it(store_url, reg_store, gateways,
                                                                         monkeypatch):
    monkeypatch.setenv("ELFCTL_DISCOVERY_PROBE_PERIOD_S", "0.5")
    gateways(store_url)
    _idle(reg_store)
    seen = set()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and not _gone(reg_store, "idle"):
        row = reg_store.query("SELECT last_status FROM registry_entries WHERE name = 'idle'")
        if row:
            seen.add(row[0]["last_status"])  # what the store says between sweeps, as `list` would show it
        time.sleep(0.1)
    assert _gone(reg_store, "idle"), "the gateway never removed the entry past its deregister_after"
    assert "critical" in seen
    assert _registry_rows(reg_store, "idle") in (WARNED, UNWARNED)
    assert not reg_store.query("SELECT name FROM registry_capabilities WHERE name = 'idle'")


def test_two_gateways_write_each_transition_once(store_url, reg_store, gateways, monkeypatch):
    monkeypatch.setenv("ELFCTL_DISCOVERY_PROBE_PERIOD_S", "0.2")  # both sweep often: many chances to collide
    for i in range(5):
        _idle(reg_store, f"idle-{i}")
    gateways(store_url)
    gateways(store_url)
    for i in range(5):
        _wait_gone(reg_store, f"idle-{i}")
    for i in range(5):
        assert _registry_rows(reg_store, f"idle-{i}") in (WARNED, UNWARNED), i


def test_a_sweep_that_lost_the_race_writes_nothing(store_url, reg_store, open_store):
    """Two sweepers at the same moment on two connections: the second reads the row as it was before
    the first committed, then finds the change already made (its conditional update matches no row)
    and writes no second trail row. SQLite: the second waits for the write lock and reads after."""
    _idle(reg_store)
    other = open_store(store_url)
    # its TTL long gone and no deregister_after: the sweep's one change is passing -> critical
    reg_store.execute("UPDATE registry_entries SET heartbeat_at = ?, deregister_after_s = NULL WHERE name = 'idle'",
                      ("2020-01-01T00:00:00+00:00",))
    second: dict = {}
    with reg_store.transaction() as tx:
        first = reg.sweep(tx, "first")
        t = threading.Thread(target=lambda: second.update(result=reg.sweep(other, "second")))
        t.start()
        t.join(1.0)  # blocked on the row (Postgres) or the write lock (SQLite) until the commit below
        assert t.is_alive()
    t.join(20)
    assert first == ([], [("idle", "passing", "critical")])
    assert second["result"] == ([], [])
    assert [(a, trig) for a, _s, trig in _registry_rows(reg_store, "idle")] == [("first", "status passing -> critical")]


def test_a_sweep_writes_at_most_its_limit(reg_store):
    for i in range(5):
        _idle(reg_store, f"idle-{i}")
    reg_store.execute("UPDATE registry_entries SET heartbeat_at = ?", ("2020-01-01T00:00:00+00:00",))
    assert len(reg.sweep(reg_store, "s", limit=2)[0]) == 2
    assert len(reg.sweep(reg_store, "s", limit=2)[0]) == 2
    assert len(reg.sweep(reg_store, "s", limit=2)[0]) == 1


def test_a_period_held_by_another_gateway_probes_and_sweeps_nothing(pg_url, open_store, project, monkeypatch,
                                                                   teams):  # noqa: F811
    """Postgres: while another process holds the prober lock, this gateway's period is skipped (no
    probe, no sweep); once it is free, the same call probes and sweeps."""
    from elfctl import config
    from elfctl.bootstrap import migrations_dir
    from elfctl.services.platform import migrate

    store, holder = open_store(pg_url), open_store(pg_url)
    migrate.migrate(store, migrations_dir(config.load(cwd=project)))
    t = teams(Team, "ok")
    deployed(store, "seo", t.port, network=False)
    store.execute("UPDATE registry_entries SET heartbeat_at = ? WHERE name = 'seo'", ("2020-01-01T00:00:00+00:00",))
    _idle(store)
    store.execute("UPDATE registry_entries SET heartbeat_at = ? WHERE name = 'idle'", ("2020-01-01T00:00:00+00:00",))
    p = Prober(store, http_health.probe, http_health.Unresolved, 10.0)
    with holder.exclusive(TURN_LOCK, 5):
        assert p.turn() == ([], ([], []))
    assert t.hits == 0 and not _gone(store, "idle")
    probed, (removed, _changed) = p.turn()
    assert [n for n, _o, _note in probed] == ["seo"] and t.hits == 1 and removed == ["idle"]


def test_two_gateways_never_probe_one_team_twice_in_a_period(pg_url, open_store, project, gateways, monkeypatch,
                                                             teams):  # noqa: F811
    """Postgres, two real gateways, a team whose probe takes 0.8 s of a 1 s period: without taking
    turns, the second gateway would read the team as due while the first still waits for its answer."""
    from elfctl import config
    from elfctl.bootstrap import migrations_dir
    from elfctl.services.platform import migrate

    monkeypatch.setenv("ELFCTL_STORE_URL", pg_url)
    monkeypatch.setenv("ELFCTL_DISCOVERY_PROBE_PERIOD_S", "1.0")
    store = open_store(pg_url)
    migrate.migrate(store, migrations_dir(config.load(cwd=project)))
    team = teams(Team, "slow", delay_s=0.8)
    deployed(store, "seo", team.port, ttl_s=60, network=False)
    store.execute("UPDATE registry_entries SET heartbeat_at = ? WHERE name = 'seo'", ("2020-01-01T00:00:00+00:00",))
    gateways(pg_url)
    gateways(pg_url)
    time.sleep(10)
    gaps = [round(b - a, 2) for a, b in zip(team.times, team.times[1:], strict=False)]
    assert len(team.times) >= 3, team.times
    assert min(gaps) >= 0.9, gaps  # one period (less a scheduling margin) between any two probes


def test_a_sweep_with_nothing_to_change_takes_no_write_lock(project, open_store):
    """SQLite: the gateway sweeps every period; one that finds nothing to change never waits for the
    write lock (here held by another connection throughout), so it cannot hold up writers either."""
    from elfctl import config
    from elfctl.bootstrap import migrations_dir
    from elfctl.services.platform import migrate

    store_url = f"sqlite:///{project / '.elf' / 'elf.db'}"
    reg_store = open_store(store_url)
    migrate.migrate(reg_store, migrations_dir(config.load(cwd=project)))
    reg.register(reg_store, Entry("fresh", kind="service", url="http://127.0.0.1:9/", ttl_s=3600))
    writer = open_store(store_url)
    done: dict = {}
    with writer.transaction():  # BEGIN IMMEDIATE: the write lock, held until the block ends
        t = threading.Thread(target=lambda: done.update(result=reg.sweep(reg_store, "s")))
        t.start()
        t.join(8)  # well inside the 10 s busy timeout a writer would wait
        assert not t.is_alive() and done["result"] == ([], [])


def test_a_gateway_killed_holding_the_turn_does_not_stop_the_others(pg_url, open_store, project, gateways,
                                                                     monkeypatch, teams):  # noqa: F811
    """Postgres: `kill -9` of a gateway while it holds the prober lock (its probe of a team that never
    answers in time is under way) releases the lock with its connection: the other gateway goes on
    sweeping, and an entry that expires afterwards gets each transition once."""
    from elfctl import config
    from elfctl.bootstrap import migrations_dir
    from elfctl.services.platform import migrate

    monkeypatch.setenv("ELFCTL_STORE_URL", pg_url)
    monkeypatch.setenv("ELFCTL_DISCOVERY_PROBE_PERIOD_S", "0.3")
    store = open_store(pg_url)
    migrate.migrate(store, migrations_dir(config.load(cwd=project)))
    hung = teams(Team, "slow", delay_s=5.0)
    deployed(store, "hung", hung.port, network=False)  # its probe gives up after 2 s: the lock is held that long
    store.execute("UPDATE registry_entries SET heartbeat_at = ? WHERE name = 'hung'", ("2020-01-01T00:00:00+00:00",))
    doomed = gateways(pg_url)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and hung.hits == 0:
        time.sleep(0.02)
    assert hung.hits == 1
    gateways(pg_url)
    doomed.kill9()  # within the 2 s the probe holds the lock
    _idle(store)
    _wait_gone(store, "idle")
    assert _gone(store, "idle")
    assert _registry_rows(store, "idle") in (WARNED, UNWARNED)
