"""@fallback: each strategy shown by its effect on a real provider (tests/llm_server.py over HTTP),
the store (queue, cache, ledger, breaker) and the actions trail, not by a log line."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from elfctl.domain.clock import iso, now
from elfctl.resilience import FallbackFailed, fallback

TEAM_CODE = '''
import os
import httpx

def ask(prompt, model="big", max_tokens=500, url=None):
    r = httpx.post(f"{url or os.environ['TEST_LLM_URL']}/chat/completions", timeout=5,
                   json={"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": prompt}]})
    r.raise_for_status()
    return r.json()


def send(items):
    raise ConnectionError("mail relay down")
'''


@pytest.fixture
def team(res_store, project, llm_server, monkeypatch):
    """The team's module (importable from the project root, as `queue drain` imports it)."""
    import importlib
    import sys

    (project / "teamfb.py").write_text(TEAM_CODE)
    monkeypatch.setenv("TEST_LLM_URL", llm_server.url)
    monkeypatch.syspath_prepend(str(project))
    sys.modules.pop("teamfb", None)
    mod = importlib.import_module("teamfb")
    yield mod
    sys.modules.pop("teamfb", None)


def actions(store):
    return [(r["strategy"], r["result"]) for r in
            store.query("SELECT strategy, result FROM platform_actions ORDER BY ts, id")]


def models_seen(llm_server):
    return [r["model"] for r in llm_server.requests]


def test_no_failure_no_fallback(team, res_store, llm_server):
    out = fallback("api_quota", ["retry", "switch_provider"], candidates=["small"], target_arg="model")(team.ask)("hi")
    assert out.served_by == "primary" and out.steps == [] and out.value["model"] == "big"
    assert actions(res_store) == []


def test_retry_runs_the_call_again_under_a_policy(team, res_store, llm_server):
    llm_server.fail("big", status=500, times=2)
    out = fallback("api_quota", ["retry"], policy="quick")(team.ask)("hi")
    assert out.served_by == "retry" and out.value["choices"][0]["message"]["content"] == "ok"
    assert llm_server.calls("big") == 3  # the call, then quick's second attempt failing, its third answering
    assert [(s.strategy, s.result) for s in out.steps] == [("retry", "ok")]
    assert actions(res_store) == [("retry", "ok")]


def test_switch_provider_walks_a_model_chain(team, res_store, llm_server):
    llm_server.rate_limit("big", retry_after=30)
    llm_server.fail("mid", status=503)
    out = fallback("api_quota", ["switch_provider"], candidates=["mid", "small"], target_arg="model",
                   team="marketing")(team.ask)("hi")
    assert out.served_by == "switch_provider" and out.value["model"] == "small"
    assert models_seen(llm_server) == ["big", "mid", "small"]
    assert [(s.strategy, s.target, s.result[:6]) for s in out.steps] == [
        ("switch_provider", "mid", "failed"), ("switch_provider", "small", "ok")]
    row = res_store.query("SELECT team, trigger, target FROM platform_actions WHERE result = 'ok'")[0]
    assert row["team"] == "marketing" and "429" in row["trigger"] and row["target"] == "small"


def test_switch_provider_to_replicas_a_lookup_returns(team, res_store, llm_server):
    from tests.realservices import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1"
    lookups = []

    def replicas():  # what a registry lookup of the service's healthy replicas returns
        lookups.append(1)
        return [f"http://127.0.0.1:{free_port()}/v1", llm_server.url]

    ask = fallback("search-svc", ["switch_provider"], candidates=replicas, target_arg="url")(team.ask)
    out = ask("hi", url=dead)
    assert out.served_by == "switch_provider" and out.steps[-1].target == llm_server.url
    assert lookups == [1] and [s.result[:6] for s in out.steps] == ["failed", "ok"]


def test_degrade_service_makes_a_cheaper_llm_call(team, res_store, llm_server):
    llm_server.fail("big", status=503)
    out = fallback("api_quota", ["degrade_service"], degrade={"model": "small", "max_tokens": 50})(team.ask)("hi")
    assert out.served_by == "degrade_service" and out.value["model"] == "small"
    last = llm_server.requests[-1]
    assert (last["model"], last["max_tokens"]) == ("small", 50)
    assert out.steps[0].target == "model=small, max_tokens=50"


def test_degrade_service_with_a_cheaper_function(team, res_store, llm_server):
    llm_server.fail("big", status=500)

    def canned(prompt, **_):
        return {"choices": [{"message": {"content": f"(busy) you said {prompt}"}}]}

    out = fallback("api_quota", ["degrade_service"], degrade=canned)(team.ask)("hi")
    assert out.value["choices"][0]["message"]["content"] == "(busy) you said hi"


def test_use_cache_serves_the_last_response_and_records_a_free_hit(team, res_store, llm_server):
    ask = fallback("api_quota", ["use_cache"], team="marketing")(team.ask)
    first = ask("what is 2+2")
    assert first.served_by == "primary"
    llm_server.fail("big", status=503)
    again = ask("what is 2+2")
    assert again.served_by == "use_cache" and again.value == first.value
    assert again.steps[0].result == "hit (ledger: $0)"
    row = res_store.query("SELECT team, cost_nanousd, source, model FROM api_usage")[0]
    assert row == {"team": "marketing", "cost_nanousd": 0, "source": "cache", "model": "big"}
    assert res_store.query("SELECT hits FROM response_cache")[0]["hits"] == 1
    with pytest.raises(FallbackFailed) as info:  # another request: nothing cached for it
        ask("what is 3+3")
    assert [(s.strategy, s.result) for s in info.value.steps] == [("use_cache", "miss")]


def test_use_cache_entries_expire(team, res_store, llm_server):
    ask = fallback("api_quota", ["use_cache"], cache_ttl=0.001)(team.ask)
    ask("hi")
    llm_server.fail("big", status=503)
    end = time.monotonic() + 30
    while res_store.query("SELECT COUNT(*) AS n FROM response_cache WHERE expires_at > ?", (iso(now()),))[0]["n"]:
        assert time.monotonic() < end  # a millisecond, at most
    with pytest.raises(FallbackFailed):
        ask("hi")


def test_queue_request_is_bounded_durable_and_drained(team, res_store, llm_server, elfctl, project):
    llm_server.fail("big", status=503)
    ask = fallback("api_quota", ["queue_request"], queue_limit=2, team="marketing")(team.ask)
    queued = [ask(f"job {i}") for i in range(2)]
    assert all(o.served_by == "queue_request" and o.value is None and o.queued for o in queued)
    with pytest.raises(FallbackFailed) as info:
        ask("job 2")
    assert "queue of api_quota is full (2 requests)" in info.value.steps[0].result
    listed = json.loads(elfctl("queue", "list", "--json", cwd=project).stdout)
    assert [e["id"] for e in listed] == [o.queued for o in queued]
    assert {e["target"] for e in listed} == {"teamfb:ask"} and {e["state"] for e in listed} == {"queued"}
    llm_server.reset()
    llm_server.answer("*")
    r = elfctl("queue", "drain", "--json", cwd=project, env={"TEST_LLM_URL": llm_server.url})
    assert r.returncode == 0, r.stderr
    assert [d["result"] for d in json.loads(r.stdout)] == ["ok", "ok"]
    prompts = [req["messages"][0]["content"] for req in llm_server.requests]
    assert prompts == ["job 0", "job 1"]
    assert json.loads(elfctl("queue", "list", "--json", cwd=project).stdout) == []
    assert actions(res_store).count(("queue_request", "queued")) == 2
    assert actions(res_store).count(("queue_request", "ok")) == 2


def test_queued_calls_wait_while_the_circuit_is_open_and_a_failed_one_stays(team, res_store, llm_server, elfctl,
                                                                            project):
    llm_server.fail("big", status=503)
    ask = fallback("api_quota", ["circuit_break", "queue_request"], breaker={"fail_max": 1, "reset_timeout": 60})(
        team.ask)
    first = ask("a")
    assert first.served_by == "queue_request"
    second = ask("b")  # the circuit is open now: no call, straight to the queue
    assert [(s.strategy, s.result) for s in second.steps] == [("circuit_break", "open: call not made"),
                                                            ("queue_request", "queued")]
    assert llm_server.calls("big") == 1
    r = elfctl("queue", "drain", "--json", cwd=project, env={"TEST_LLM_URL": llm_server.url})
    assert r.returncode == 0 and {d["result"] for d in json.loads(r.stdout)} == {"skipped: resource still unhealthy"}
    r = elfctl("queue", "drain", "--force", "--json", cwd=project, env={"TEST_LLM_URL": llm_server.url})
    assert r.returncode == 1  # the provider still fails: they stay queued, with the error
    assert "failed again" in r.stderr
    listed = json.loads(elfctl("queue", "list", "--json", cwd=project).stdout)
    assert len(listed) == 2 and all("503" in e["last_error"] and e["attempts"] == 1 for e in listed)
    r = elfctl("queue", "drop", "--all", cwd=project)
    assert r.returncode == 0 and "dropped 2" in r.stdout
    assert actions(res_store).count(("queue_request", "dropped")) == 2


def test_a_healthy_call_drains_its_resource_queue(team, res_store, llm_server):
    llm_server.fail("big", status=503, times=1)
    ask = fallback("api_quota", ["queue_request"])(team.ask)
    assert ask("later").served_by == "queue_request"
    assert ask("now").served_by == "primary"  # healthy again: the queued call runs in the background
    end = time.monotonic() + 20
    while res_store.query("SELECT COUNT(*) AS n FROM resilience_queue")[0]["n"]:
        assert time.monotonic() < end, "the queue was not drained"
    assert [r["messages"][0]["content"] for r in llm_server.requests] [:3] in (
        ["later", "now", "later"], ["later", "later", "now"])


def test_circuit_break_skips_the_call_while_open(team, res_store, llm_server):
    llm_server.fail("big", status=500)
    ask = fallback("api_quota", ["circuit_break", "degrade_service"], breaker={"fail_max": 2, "reset_timeout": 60},
                   degrade={"model": "small"})(team.ask)
    for _ in range(2):
        assert ask("hi").served_by == "degrade_service"
    out = ask("hi")
    assert out.steps[0].result == "open: call not made" and out.served_by == "degrade_service"
    assert llm_server.calls("big") == 2
    assert ("circuit_break", "opened") in actions(res_store)


def test_strategies_run_in_order_until_one_serves(team, res_store, llm_server):
    llm_server.fail("big", status=503)
    llm_server.fail("mid", status=503)
    ask = fallback("api_quota", ["retry", "switch_provider", "degrade_service", "queue_request"],
                   policy="quick", candidates=["mid"], target_arg="model",
                   degrade={"model": "small", "max_tokens": 20})(team.ask)
    out = ask("hi")
    assert [(s.strategy, s.result[:6]) for s in out.steps] == [
        ("retry", "failed"), ("switch_provider", "failed"), ("degrade_service", "ok")]
    assert out.served_by == "degrade_service"
    assert res_store.query("SELECT COUNT(*) AS n FROM resilience_queue")[0]["n"] == 0  # never reached


def test_all_strategies_failing_raise_with_the_steps(team, res_store, llm_server):
    llm_server.fail("*", status=503)
    ask = fallback("api_quota", ["switch_provider", "use_cache"], candidates=["mid"], target_arg="model")(team.ask)
    with pytest.raises(FallbackFailed) as info:
        ask("hi")
    e = info.value
    assert e.code == "fallback_failed" and [s.strategy for s in e.steps] == ["switch_provider", "use_cache"]
    assert "503" in e.message and "switch_provider: failed" in e.message
    assert actions(res_store) == [("switch_provider", e.steps[0].result), ("use_cache", "miss")]


def test_a_bad_request_is_not_fallen_back_from(team, res_store, llm_server):
    import httpx

    llm_server.fail("big", status=400)
    ask = fallback("api_quota", ["retry", "switch_provider"], candidates=["small"], target_arg="model")(team.ask)
    with pytest.raises(httpx.HTTPStatusError):
        ask("hi")
    assert llm_server.calls() == 1 and actions(res_store) == []


def test_async_functions_alike(res_store, llm_server):
    import httpx

    @fallback("api_quota", ["switch_provider"], candidates=["small"], target_arg="model")
    async def ask(prompt, model="big"):
        async with httpx.AsyncClient(timeout=5) as c:
            r = await c.post(f"{llm_server.url}/chat/completions", json={"model": model, "messages": []})
            r.raise_for_status()
            return r.json()["model"]

    llm_server.fail("big", status=502)
    out = asyncio.run(ask("hi"))
    assert out.served_by == "switch_provider" and out.value == "small"


def test_unknown_strategy_is_refused_at_decoration():
    with pytest.raises(ValueError, match="unknown strategy 'pray'"):
        fallback("x", ["retry", "pray"])


def test_arguments_that_are_not_json_are_not_queued(team, res_store, llm_server):
    send = fallback("mail", ["queue_request"])(team.send)
    with pytest.raises(FallbackFailed) as info:
        send({1, 2})
    assert "not JSON" in info.value.steps[0].result
    assert res_store.query("SELECT COUNT(*) AS n FROM resilience_queue")[0]["n"] == 0
    with pytest.raises(FallbackFailed) as info:  # a function defined inside another cannot be found again
        fallback("mail", ["queue_request"])(lambda items: team.send(items))([1])
    assert "only module-level functions" in info.value.steps[0].result


HANGING = '''
import pathlib

def slow_job(marker):
    pathlib.Path(marker).write_text("started")
    import time
    time.sleep(600)  # a call that hangs: its drainer is killed
'''


def test_a_drainer_killed_mid_call_leaves_the_row_to_the_next(res_store, project, monkeypatch, store_url):
    import signal
    import subprocess
    import sys

    from elfctl.services.resilience import queue

    (project / "hangjob.py").write_text(HANGING)
    monkeypatch.syspath_prepend(str(project))
    marker = project / "started.txt"
    entry = queue.enqueue(res_store, "jobs", "hangjob:slow_job", json.dumps({"args": [str(marker)], "kwargs": {}}),
                          limit=10)
    code = ("import sys; sys.path.insert(0, '.'); from elfctl import config; from elfctl.bootstrap import open_store;"
            "from elfctl.services.resilience import queue;"
            f"queue.drain(open_store(config.load(), {store_url!r}), 'test', claim_s=1.0)")
    drainer = subprocess.Popen([sys.executable, "-c", code], cwd=project)
    try:
        end = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < end and drainer.poll() is None, "the drainer never started the call"
    finally:
        drainer.send_signal(signal.SIGKILL)
        drainer.wait()
    assert [e.state for e in queue.listing(res_store)] == ["running"]
    assert queue.drain(res_store, "test", run=lambda t: (lambda m: None)) == []  # still claimed: not run twice
    end = time.monotonic() + 10
    while queue.listing(res_store)[0].state == "running":  # the claim lasts 1 s
        assert time.monotonic() < end
    done = queue.drain(res_store, "test", run=lambda t: (lambda m: None))
    assert [(d.id, d.result) for d in done] == [(entry, "ok")] and queue.listing(res_store) == []
    assert queue.pending(res_store, "jobs") == 0  # the bound's counter follows the rows


def test_a_stalled_model_hands_over_to_the_next(res_store, llm_server):
    import httpx

    llm_server.stall("big", seconds=3)

    @fallback("api_quota", ["switch_provider"], candidates=["small"], target_arg="model")
    def ask(model="big"):
        r = httpx.post(f"{llm_server.url}/chat/completions", json={"model": model, "messages": []}, timeout=0.5)
        r.raise_for_status()
        return r.json()["model"]

    t0 = time.monotonic()
    out = ask()
    assert out.value == "small" and time.monotonic() - t0 < 3
    assert "ReadTimeout" in res_store.query("SELECT trigger FROM platform_actions")[0]["trigger"]
