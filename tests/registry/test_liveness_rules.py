"""The pure rules: liveness at any moment (a fake clock: the TTLs here are hours and days), loops."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from elfctl.domain import registry as rules
from elfctl.domain.registry import Entry

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_ttl_day_long_states_and_removal():
    e = Entry("x", ttl_s=86400, deregister_after_s=7 * 86400, heartbeat_at=T0.isoformat())
    assert rules.liveness(e, at(43199))[0] == "passing"
    assert rules.liveness(e, at(43201))[0] == "warning"
    status, reason, since = rules.liveness(e, at(86401))
    assert (status, since) == ("critical", at(86400)) and "no heartbeat" in reason
    assert not rules.expired(e, at(86400 + 7 * 86400 - 1))
    assert rules.expired(e, at(86400 + 7 * 86400))


def test_a_failing_heartbeat_is_critical_at_once_and_counts_toward_removal():
    e = Entry("x", check_status="critical", note="db down", heartbeat_at=T0.isoformat(), deregister_after_s=600)
    assert rules.liveness(e, at(1))[:2] == ("critical", "db down")
    assert rules.expired(e, at(600)) and not rules.expired(e, at(599))
    assert not rules.expired(Entry("y", check_status="critical", heartbeat_at=T0.isoformat()), at(10**8))


def test_no_ttl_never_goes_critical_by_itself():
    assert rules.liveness(Entry("x", heartbeat_at=T0.isoformat()), at(10**9))[0] == "passing"


@given(st.dictionaries(st.sampled_from("abcdef"), st.lists(st.sampled_from("abcdefg"), max_size=3), max_size=6))
def test_cycle_found_is_a_real_cycle_and_none_means_acyclic(graph):
    loop = rules.cycle(graph)
    if loop:
        assert loop[0] == loop[-1]
        assert all(b in graph[a] for a, b in zip(loop, loop[1:], strict=False))
    else:  # a topological order exists
        import graphlib

        graphlib.TopologicalSorter({k: set(v) for k, v in graph.items()}).static_order()


def test_a_long_chain_does_not_recurse():
    chain = {f"n{i}": [f"n{i + 1}"] for i in range(5000)}
    assert rules.cycle(chain) is None
    chain["n5000"] = ["n0"]
    assert len(rules.cycle(chain)) == 5002
