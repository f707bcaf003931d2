"""elfctl.llm.completion through real litellm against the local server, on SQLite and Postgres."""

from __future__ import annotations

import asyncio

import pytest

from elfctl.domain.budget import BudgetExceeded

MSG = [{"role": "user", "content": "hello"}]


def _team(project, name="alpha", model="openai/gpt-4o", fallbacks=("openai/gpt-4o-mini",), budget=None):
    folder = project / "teams" / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"name: {name}", "llm:", f"  model: {model}", f"  fallbacks: [{', '.join(fallbacks)}]"]
    if budget:
        lines.append("  budget:")
        lines += [f"    {k}: {v}" for k, v in budget.items()]
    (folder / "team.yaml").write_text("\n".join(lines) + "\n")


def usage(store, team="alpha"):
    from elfctl import llm

    llm.flush()  # calls return once spooled; the writer thread commits a moment later
    return store.query("SELECT * FROM api_usage WHERE team = ? ORDER BY id", (team,))


def test_exact_cost_recorded_with_summary(llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project)
    llm_server.answer("gpt-4o", prompt=1000, completion=200, cached=400)
    resp = llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=300)
    info = resp._hidden_params["elfctl"]
    # gpt-4o: input 2.5e-6, cached read 1.25e-6, output 1e-5 USD/token (litellm's shipped map)
    expected = 600 * 2500 + 400 * 1250 + 200 * 10000
    assert info["cost_nanousd"] == expected and info["model"] == "openai/gpt-4o"
    rows = usage(store)
    assert len(rows) == 1 and rows[0]["cost_nanousd"] == expected and rows[0]["cached_tokens"] == 400
    assert rows[0]["price_version"].startswith("litellm:") and rows[0]["priced"] == 1
    s = store.query("SELECT * FROM daily_cost_summary WHERE team = 'alpha'")
    assert [(r["model"], r["calls"], r["cost_nanousd"]) for r in s] == [("openai/gpt-4o", 1, expected)]


def test_fallback_on_server_errors_records_reason(llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project)
    llm_server.fail("gpt-4o", status=500)
    llm_server.answer("gpt-4o-mini", prompt=100, completion=10)
    resp = llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=20)
    assert resp._hidden_params["elfctl"]["model"] == "openai/gpt-4o-mini"
    row = usage(store)[-1]
    assert row["requested_model"] == "openai/gpt-4o" and row["model"] == "openai/gpt-4o-mini"
    assert "openai/gpt-4o: server" in row["fallback_reason"]
    assert llm_server.calls("gpt-4o") == 2  # retried once (retry_max_tries=2), then fell back
    assert row["cost_nanousd"] == 100 * 150 + 10 * 600


def test_no_retry_on_bad_request_or_auth(llm_env, llm_server):
    from elfctl import llm
    from elfctl.errors import ElfError

    project, store = llm_env
    _team(project, fallbacks=())
    llm_server.fail("gpt-4o", status=400)
    with pytest.raises(ElfError) as e:
        llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    assert "bad_request" in e.value.message and llm_server.calls("gpt-4o") == 1
    llm_server.reset()
    llm_server.fail("gpt-4o", status=401)
    with pytest.raises(ElfError) as e:
        llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    assert "auth" in e.value.message and llm_server.calls("gpt-4o") == 1


def test_retry_after_is_honoured_then_answer(llm_env, llm_server):
    import time

    from elfctl import llm

    project, store = llm_env
    _team(project, fallbacks=())
    llm_server.rate_limit("gpt-4o", retry_after=1, times=1)
    llm_server.answer("gpt-4o")
    t0 = time.monotonic()
    resp = llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    assert time.monotonic() - t0 >= 0.95  # waited what the server asked, not a jittered fraction
    assert resp._hidden_params["elfctl"]["fallback_reason"] is None and llm_server.calls("gpt-4o") == 2


def test_stall_past_timeout_falls_back_and_releases_reservation(llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project, budget={"daily_usd": 1})
    llm_server.stall("gpt-4o", seconds=3)
    resp = llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    assert resp._hidden_params["elfctl"]["model"] == "openai/gpt-4o-mini"
    assert "timeout" in usage(store)[-1]["fallback_reason"]
    assert store.query("SELECT COUNT(*) AS n FROM budget_reservations")[0]["n"] == 0
    r = store.query("SELECT SUM(reserved_nanousd) AS r FROM spend_counters WHERE team='alpha'")[0]["r"]
    assert r == 0


def test_breaker_opens_then_half_open_probe_closes_it(llm_env, llm_server):
    import time

    from elfctl import llm

    project, store = llm_env
    _team(project)
    llm_server.fail("gpt-4o", status=503)
    for _ in range(2):  # 2 calls x 2 attempts = 4 failures >= breaker_fail_max 3
        llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    state = store.query("SELECT state FROM breaker_state WHERE name = 'llm:openai/gpt-4o'")[0]["state"]
    assert state == "open"
    before = llm_server.calls("gpt-4o")
    llm.reset()  # a fresh process state: the circuit lives in the store, not in memory
    resp = llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    assert llm_server.calls("gpt-4o") == before  # open: not even tried
    assert resp._hidden_params["elfctl"]["model"] == "openai/gpt-4o-mini"
    llm_server.answer("gpt-4o")
    time.sleep(1.1)  # breaker_reset_s = 1
    resp = llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    assert resp._hidden_params["elfctl"]["model"] == "openai/gpt-4o"  # the probe succeeded
    assert (
        store.query("SELECT state FROM breaker_state WHERE name = 'llm:openai/gpt-4o'")[0]["state"]
        == "closed"
    )


def test_budget_block_says_budget_spend_and_reset(llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project, fallbacks=(), budget={"daily_usd": 0.001, "hard_action": "block"})
    llm_server.answer("gpt-4o", prompt=10, completion=50)
    # worst case at max_tokens=50: ~10 prompt tokens * 2500 + 50 * 10000 = ~0.000525 USD
    llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=50)
    with pytest.raises(BudgetExceeded) as e:
        llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=50)
    msg = e.value.message
    assert "daily budget $0.001" in msg and "spent $0.000525" in msg and "resets at" in msg
    assert len(usage(store)) == 1 and llm_server.calls("gpt-4o") == 1


def test_budget_downgrade_bills_the_cheaper_model(llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project, budget={"daily_usd": 0.001, "hard_action": "downgrade", "soft_limit": 1.0})
    llm_server.answer("*", prompt=10, completion=50)
    llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=50)
    resp = llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=50)
    info = resp._hidden_params["elfctl"]
    assert info["model"] == "openai/gpt-4o-mini" and "budget reached" in info["fallback_reason"]
    assert llm_server.calls("gpt-4o") == 1


def test_budget_warn_lets_the_call_through(llm_env, llm_server, caplog):
    from elfctl import llm

    project, store = llm_env
    _team(project, fallbacks=(), budget={"daily_usd": 0.0001, "hard_action": "warn"})
    llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=50)
    llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=50)
    assert len(usage(store)) == 2
    assert "anyway (action warn)" in caplog.text


def test_store_budget_wins_over_team_yaml(llm_env, llm_server):
    from elfctl import llm
    from elfctl.domain.budget import Budget
    from elfctl.services.cost import budgets

    project, store = llm_env
    _team(project, fallbacks=(), budget={"daily_usd": 100})
    budgets.set_budget(store, Budget("alpha", daily_nanousd=1000))
    with pytest.raises(BudgetExceeded):
        llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=50)


def test_unpriced_model_refused_with_budget_recorded_unpriced_without(llm_env, llm_server, caplog):
    from elfctl import llm
    from elfctl.errors import InputError

    project, store = llm_env
    _team(project, model="openai/my-private-model", fallbacks=(), budget={"daily_usd": 5})
    with pytest.raises(InputError, match="has no price"):
        llm.completion(team="alpha", messages=MSG, api_base=llm_server.url)
    assert llm_server.calls() == 0
    _team(project, name="beta", model="openai/my-private-model", fallbacks=())
    llm.completion(team="beta", messages=MSG, api_base=llm_server.url)
    row = usage(store, "beta")[0]
    assert row["priced"] == 0 and row["cost_nanousd"] == 0 and "no price" in caplog.text
    assert store.query("SELECT unpriced FROM daily_cost_summary WHERE team='beta'")[0]["unpriced"] == 1


def test_same_request_id_counts_once(llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project, fallbacks=())
    for _ in range(2):
        llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5, request_id="req-1")
    assert len(usage(store)) == 1
    assert store.query("SELECT calls FROM daily_cost_summary WHERE team='alpha'")[0]["calls"] == 1


def test_acompletion_with_fallback(llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project)
    llm_server.fail("gpt-4o", status=500)
    resp = asyncio.run(llm.acompletion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5))
    assert resp._hidden_params["elfctl"]["model"] == "openai/gpt-4o-mini"
    assert usage(store)[-1]["model"] == "openai/gpt-4o-mini"


def test_acompletion_keeps_store_work_off_the_event_loop(llm_env, llm_server, monkeypatch):
    """Keys, budget reservations and breakers touch the store (and may derive the credential key):
    in an async program that work must not stall the event loop, and concurrent calls still settle
    exactly once each."""
    import threading

    from elfctl import llm

    project, store = llm_env
    _team(project, budget={"daily_usd": 5})
    llm_server.answer("gpt-4o", prompt=100, completion=10)
    caller = llm.runtime().caller
    store_threads: set[int] = set()
    for name in ("query", "execute", "transaction"):
        real = getattr(caller.store, name)

        def spy(*a, _real=real, **kw):
            store_threads.add(threading.get_ident())
            return _real(*a, **kw)

        monkeypatch.setattr(caller.store, name, spy)

    async def main():
        loop_thread = threading.get_ident()
        answers = await asyncio.gather(*(
            llm.acompletion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=20) for _ in range(6)))
        return loop_thread, answers

    loop_thread, answers = asyncio.run(main())
    assert len(answers) == 6 and store_threads and loop_thread not in store_threads
    rows = usage(store)
    assert len(rows) == 6 and len({r["request_id"] for r in rows}) == 6
    reserved = store.query("SELECT COALESCE(SUM(reserved_nanousd), 0) AS r FROM spend_counters")
    assert reserved[0]["r"] == 0  # every reservation settled


def test_callback_records_direct_litellm_calls(llm_env, llm_server):
    import time

    from elfctl import llm
    from elfctl.adapters.litellm_client import sdk

    project, store = llm_env
    litellm = sdk()
    cb = llm.callback(team="gamma")
    litellm.callbacks.append(cb)
    try:
        llm_server.answer("gpt-4o-mini", prompt=20, completion=4)
        litellm.completion(model="openai/gpt-4o-mini", messages=MSG, api_base=llm_server.url, api_key="sk-x")
        deadline = time.monotonic() + 30
        while not usage(store, "gamma") and time.monotonic() < deadline:
            time.sleep(0.05)  # litellm runs success callbacks in a background thread
    finally:
        litellm.callbacks.remove(cb)
    rows = usage(store, "gamma")
    assert (
        len(rows) == 1 and rows[0]["source"] == "callback" and rows[0]["cost_nanousd"] == 20 * 150 + 4 * 600
    )


def _spend_today(store, team, nanousd):
    import datetime as dt

    from elfctl.domain.clock import iso
    from elfctl.domain.usage import UsageRow
    from elfctl.services.cost import ledger

    ledger.record(
        store,
        [
            UsageRow(
                request_id=f"pre-{team}",
                ts=iso(dt.datetime.now(dt.UTC)),
                team=team,
                requested_model="openai/gpt-4o",
                model="openai/gpt-4o",
                cost_nanousd=nanousd,
            )
        ],
    )


def test_soft_limit_downgrade_then_soft_block(llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project, budget={"daily_usd": 0.01, "soft_limit": 0.5, "soft_action": "downgrade"})
    _spend_today(
        store, "alpha", 4_900_000
    )  # 49%: gpt-4o's worst case (~0.52 m$) crosses 50%, mini's does not
    resp = llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=50)
    info = resp._hidden_params["elfctl"]
    assert info["model"] == "openai/gpt-4o-mini" and "soft budget limit (50%)" in info["fallback_reason"]
    assert llm_server.calls("gpt-4o") == 0
    _team(
        project,
        name="beta",
        fallbacks=(),
        budget={"daily_usd": 0.01, "soft_limit": 0.5, "soft_action": "block"},
    )
    _spend_today(store, "beta", 4_900_000)
    with pytest.raises(BudgetExceeded):
        llm.completion(team="beta", messages=MSG, api_base=llm_server.url, max_tokens=50)
    assert store.query("SELECT SUM(reserved_nanousd) AS r FROM spend_counters WHERE team='beta'")[0]["r"] == 0


def test_prompt_hash_marks_repeated_prompts(llm_env, llm_server):
    from elfctl import llm
    from elfctl.domain.usage import prompt_hash

    project, store = llm_env
    _team(project, fallbacks=())
    for content in ("same", "same", "other"):
        llm.completion(team="alpha", messages=[{"role": "user", "content": content}], api_base=llm_server.url)
    hashes = [r["prompt_hash"] for r in usage(store)]
    assert hashes[0] == hashes[1] == prompt_hash([{"role": "user", "content": "same"}]) != hashes[2]
