"""Gateway processes on one Postgres store: two of them against one small budget (the overshoot stays
within the ledger's proven bound, tests/llm/test_concurrency.py), and kill -9 under load then a
restart (every call a client saw answered 200 is in the ledger exactly once)."""

from __future__ import annotations

import threading

import openai
import pytest

from tests.gateway.conftest import write_team
from tests.llm import hammer

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
MSG = [{"role": "user", "content": "hello"}]
CLIENTS = 8


@pytest.fixture
def store_url(pg_url):
    return pg_url


def _clients(gateways, key, body, stop: threading.Event, until_blocked: int | None = None):
    """CLIENTS threads calling round-robin over `gateways`; returns (threads, results) where results
    collects ('ok', request id) / ('blocked', None) / ('error', exception name)."""
    results: list[tuple[str, str | None]] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        # A budgeted call's first estimate imports litellm's tokenizer in the gateway (seconds on a busy machine).
        client = openai.OpenAI(base_url=gateways[i % len(gateways)].base_url, api_key=key, max_retries=0, timeout=180)
        blocked = 0
        while not stop.is_set():
            try:
                raw = client.chat.completions.with_raw_response.create(**body)
                got = ("ok", raw.headers["x-request-id"])
            except openai.RateLimitError as exc:
                got = ("blocked", exc.code)
                blocked += 1
            except openai.APIError as exc:
                got = ("error", type(exc).__name__)
            with lock:
                results.append(got)
            if until_blocked is not None and blocked >= until_blocked:
                return

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    return threads, results


def test_two_gateways_on_one_budget_overshoot_within_the_bound(gw_env, start_gateway, mint, llm_server):
    project, store = gw_env
    limit_usd = "0.02"
    write_team(project, "alpha", "openai/gpt-4o", budget={"daily_usd": limit_usd, "hard_action": "block"})
    # The provider bills 200 prompt tokens where the estimate counts 8 (hammer.py's estimation error).
    llm_server.answer("gpt-4o", prompt=hammer.PROMPT_BILLED, completion=hammer.COMPLETION, delay=0.02)
    gateways = [start_gateway(), start_gateway()]
    stop = threading.Event()
    threads, results = _clients(gateways, mint("alpha"),
                                {"model": "openai/gpt-4o", "messages": MSG, "max_tokens": hammer.COMPLETION},
                                stop, until_blocked=3)
    for t in threads:
        t.join(600)
    stop.set()
    ok = [r for r in results if r[0] == "ok"]
    assert [r for r in results if r[0] == "error"] == []
    assert {r[1] for r in results if r[0] == "blocked"} == {"budget_exceeded"}
    for g in gateways:
        g.stop()  # each writer commits what it holds before the process ends
    rows = store.query("SELECT request_id FROM api_usage WHERE team = 'alpha'")
    assert sorted(r["request_id"] for r in rows) == sorted(r[1] for r in ok)
    f = hammer.figures(store, int(float(limit_usd) * 1e9), len(ok), CLIENTS)
    print(f"\ntwo gateways, {CLIENTS} clients: {f}")
    assert f["overshoot"] <= f["bound"] < CLIENTS * f["per_call"], f
    assert f["spent"] > f["limit"] - f["per_call"] - f["bound"], f  # the budget was used up
    c = store.query("SELECT SUM(reserved_nanousd) AS r, SUM(spent_nanousd) AS s FROM spend_counters "
                    "WHERE team = 'alpha' AND window_kind = 'day'")[0]
    assert c["r"] == 0 and c["s"] == f["spent"]


def test_kill_9_under_load_then_restart_every_200_is_recorded_once(gw_env, start_gateway, mint, llm_server):
    project, store = gw_env
    llm_server.answer("gpt-4o-mini", prompt=10, completion=5, delay=0.005)
    gateway = start_gateway(workers=2)
    stop = threading.Event()
    threads, results = _clients([gateway], mint("alpha"), {"model": "gpt-4o-mini", "messages": MSG}, stop)
    while sum(1 for r in list(results) if r[0] == "ok") < 300:
        threads[0].join(0.05)
    gateway.kill9()  # the supervisor and both workers, mid-load
    stop.set()
    for t in threads:
        t.join(30)
    answered = [r[1] for r in results if r[0] == "ok"]
    assert len(answered) >= 300 and len(set(answered)) == len(answered)
    spooled = list((project / ".elf" / "spool").glob("spool-*.jsonl"))
    assert spooled, "the killed workers left their spool files"
    before = {r["request_id"] for r in store.query("SELECT request_id FROM api_usage")}
    # The restart replays the dead workers' spool before it serves.
    gateway.start()
    rows = store.query("SELECT request_id FROM api_usage WHERE team = 'alpha'")
    ids = [r["request_id"] for r in rows]
    assert len(ids) == len(set(ids))
    missing = set(answered) - set(ids)
    assert not missing, f"{len(missing)} answered call(s) not in the ledger"
    # Calls the provider answered but whose answer never reached a client may be recorded too
    # (generated, so charged); nothing else is.
    assert len(ids) <= llm_server.calls("gpt-4o-mini")
    print(f"\nkill -9 under load: {len(answered)} answered, {len(set(answered) - before)} of them recorded "
          f"only by the replay, {len(ids)} recorded, "
          f"{llm_server.calls('gpt-4o-mini')} provider calls, {len(spooled)} spool file(s) replayed")
