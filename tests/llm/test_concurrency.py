"""Eight processes on one small budget (SQLite and Postgres), and spool replay after a SIGKILL."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.llm import hammer
from tests.llm.test_calls import MSG, _team

PROCS = 8
LIMIT_USD = "0.02"


def test_eight_processes_overshoot_at_most_the_estimation_error(llm_env, llm_server):
    eight_processes_within_the_bound(*llm_env, llm_server)


def eight_processes_within_the_bound(project, store, llm_server):
    """The proof, also run through a Supabase-shaped database as service_role (tests/supabase)."""
    _team(project, fallbacks=(), budget={"daily_usd": LIMIT_USD, "hard_action": "block"})
    got = hammer.run(project, llm_server, PROCS)
    f = hammer.figures(store, int(float(LIMIT_USD) * 1e9), got["calls"], PROCS)
    rows = store.query("SELECT COUNT(*) AS n FROM api_usage WHERE team='alpha'")[0]["n"]
    assert rows == got["calls"] and got["blocked"] == PROCS * 3
    print(f"\novershoot {store.dialect}: {f}")
    # Never N whole calls over: at most the estimation error of the calls in flight.
    assert f["overshoot"] <= f["bound"] < PROCS * f["per_call"], f
    # ... and the budget was really used up (the last call that fits was admitted).
    assert f["spent"] > f["limit"] - f["per_call"] - f["bound"], f
    c = store.query(
        "SELECT SUM(reserved_nanousd) AS r, SUM(spent_nanousd) AS s FROM spend_counters "
        "WHERE team='alpha' AND window_kind='day'"
    )[0]
    assert c["r"] == 0 and c["s"] == f["spent"]
    assert store.query("SELECT COUNT(*) AS n FROM budget_reservations")[0]["n"] == 0


KILLER = textwrap.dedent("""
    import os, signal, sys
    from elfctl.services.cost import ledger
    def die(*a, **k):  # the provider answered and the row is spooled: die before the store commit
        os.kill(os.getpid(), signal.SIGKILL)
    ledger.record = die
    from elfctl import llm
    llm.completion(team="alpha", messages=[{"role": "user", "content": "hello"}], api_base=sys.argv[1],
                   max_tokens=50, request_id="killed-after-answer")
""")


def test_spool_replay_after_kill(llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project, fallbacks=(), budget={"daily_usd": 1})
    llm_server.answer("gpt-4o", prompt=10, completion=40)
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, llm_server.url],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert llm_server.calls("gpt-4o") == 1
    assert store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"] == 0
    left = list((project / ".elf" / "spool").glob("spool-*.jsonl"))
    assert len(left) == 1 and "killed-after-answer" in left[0].read_text()
    assert store.query("SELECT COUNT(*) AS n FROM budget_reservations")[0]["n"] == 1
    # The next start replays the spool: the call is counted once, its reservation settled.
    llm.reset()
    llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=50)
    llm.flush()
    row = store.query("SELECT * FROM api_usage WHERE request_id = 'killed-after-answer'")
    assert len(row) == 1 and row[0]["cost_nanousd"] == 10 * 2500 + 40 * 10000
    assert not left[0].exists()  # replayed, then removed
    assert store.query("SELECT COUNT(*) AS n FROM budget_reservations")[0]["n"] == 0
    c = store.query(
        "SELECT reserved_nanousd AS r, spent_nanousd AS s FROM spend_counters "
        "WHERE team='alpha' AND window_kind='day'"
    )[0]
    total = store.query("SELECT SUM(cost_nanousd) AS s FROM api_usage")[0]["s"]
    assert c["r"] == 0 and c["s"] == total
    # Replaying the same spool file again counts nothing twice.
    from elfctl.domain.usage import UsageRow
    from elfctl.services.cost import ledger

    assert (
        ledger.record(
            store,
            [
                UsageRow(
                    **{
                        **{k: v for k, v in row[0].items() if k in UsageRow.__dataclass_fields__},
                        "priced": True,
                    }
                )
            ],
        )
        == 0
    )


def test_expired_reservation_of_a_killed_process_is_released(llm_env, llm_server):
    import datetime as dt

    from elfctl.domain.budget import Budget
    from elfctl.services.cost import budgets

    project, store = llm_env
    b = budgets.set_budget(store, Budget("alpha", daily_nanousd=1_000_000))
    t0 = dt.datetime.now(dt.UTC)
    budgets.reserve(store, b, 900_000, ttl_s=5, now=t0)  # a process that then died
    try:
        budgets.reserve(store, b, 200_000, ttl_s=5, now=t0 + dt.timedelta(seconds=1))
        raise AssertionError("the budget should be full while the reservation lives")
    except budgets.Refused:
        pass
    res = budgets.reserve(store, b, 200_000, ttl_s=5, now=t0 + dt.timedelta(seconds=6))
    assert res.states[0].reserved == 200_000


KILLED_AFTER_RETURN = textwrap.dedent("""
    import os, signal, sys, threading
    from elfctl.services.cost import ledger
    stuck = threading.Event()
    def stall(*a, **k):  # the background writer never gets to commit
        stuck.wait()
    ledger.record = stall
    from elfctl import llm
    resp = llm.completion(team="alpha", messages=[{"role": "user", "content": "hello"}],
                          api_base=sys.argv[1], max_tokens=50, request_id="killed-after-return")
    print(resp._hidden_params["elfctl"]["cost_nanousd"], flush=True)  # the caller has its answer
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_kill_after_return_before_background_commit_is_replayed_once(llm_env, llm_server):
    """The call returned (its row only in the spool, the writer thread not done): SIGKILL. The next
    start records it once and settles its reservation."""
    from elfctl import llm

    project, store = llm_env
    _team(project, fallbacks=(), budget={"daily_usd": 1})
    llm_server.answer("gpt-4o", prompt=10, completion=40)
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_RETURN, llm_server.url],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    cost = 10 * 2500 + 40 * 10000
    assert proc.returncode == -9 and proc.stdout.split() == [str(cost)], proc.stderr[-2000:]
    assert store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"] == 0
    left = list((project / ".elf" / "spool").glob("spool-*.jsonl"))
    assert len(left) == 1 and "killed-after-return" in left[0].read_text()
    held = store.query("SELECT SUM(reserved_nanousd) AS r FROM spend_counters WHERE window_kind='day'")
    assert held[0]["r"] > 0  # the unsettled call still counts against the budget
    llm.reset()
    llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=50)  # replays
    llm.flush()
    rows = store.query("SELECT cost_nanousd FROM api_usage WHERE request_id = 'killed-after-return'")
    assert [r["cost_nanousd"] for r in rows] == [cost]
    c = store.query(
        "SELECT reserved_nanousd AS r, spent_nanousd AS s FROM spend_counters "
        "WHERE team='alpha' AND window_kind='day'"
    )[0]
    total = store.query("SELECT SUM(cost_nanousd) AS s FROM api_usage")[0]["s"]
    assert c["r"] == 0 and c["s"] == total == 2 * cost
    assert store.query("SELECT COUNT(*) AS n FROM budget_reservations")[0]["n"] == 0
    assert not left[0].exists()  # replayed, then removed
    # Replaying again (a second start) counts nothing twice.
    llm.reset()
    llm.runtime()
    assert store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"] == 2
