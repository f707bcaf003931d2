"""One model's time budget (`llm.retry_max_time_s`) holds across retries, timeouts included, through
real litellm against the local server told to stall: each attempt's timeout is what is left of the
budget, no attempt starts once it is spent, and the next model is called within it.

The llm_env fixture sets retry_max_time_s = 3 (BUDGET). Each test first makes one call, so litellm's
one-off import and its lazy imports on a process's first call (not charged to the budget) are done.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from tests.llm.test_calls import MSG, _team, usage

BUDGET = 3.0
MARGIN = 1.5  # store writes, litellm's own work around the request, 2 cores shared with other work
SHORT = 0.2  # an attempt's timeout is the time left rounded down to 0.1 s (litellm keys clients by it)


def _ready(llm_env, llm_server, monkeypatch, **env):
    """Team alpha (gpt-4o, then gpt-4o-mini), `ELFCTL_LLM_<KEY>` settings, and one call made; the store."""
    from elfctl import llm

    for key, value in env.items():
        monkeypatch.setenv(f"ELFCTL_LLM_{key.upper()}", str(value))
    project, store = llm_env
    _team(project)
    llm.completion(team="alpha", model="openai/gpt-4o-mini", messages=MSG, api_base=llm_server.url)
    return store


def _spent(reason: str, model: str) -> float:
    """The seconds the fallback reason says `model` took."""
    return float(re.search(re.escape(model) + r": \w+ after ([\d.]+)s", reason).group(1))


def test_hung_provider_falls_back_within_the_budget(llm_env, llm_server, monkeypatch):
    """A request timeout longer than the budget is cut to the budget: one attempt, then the fallback
    (before: the hung model was tried twice with the full timeout, 2 x 10 s, before the fallback)."""
    from elfctl import llm

    store = _ready(llm_env, llm_server, monkeypatch, timeout_s=10, retry_max_tries=3)
    llm_server.stall("gpt-4o", seconds=30)
    t0 = time.monotonic()
    resp = llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    took = time.monotonic() - t0
    assert BUDGET - SHORT <= took <= BUDGET + MARGIN, took
    assert resp._hidden_params["elfctl"]["model"] == "openai/gpt-4o-mini"
    assert llm_server.calls("gpt-4o") == 1  # its timeout was the whole budget: no room for a retry
    row = usage(store)[-1]
    assert row["model"] == "openai/gpt-4o-mini" and "openai/gpt-4o: timeout after" in row["fallback_reason"]
    assert BUDGET - SHORT <= _spent(row["fallback_reason"], "openai/gpt-4o") <= BUDGET + MARGIN


def test_every_model_hung_fails_within_one_budget_per_model(llm_env, llm_server, monkeypatch):
    """Retries shrink the last attempt's timeout to what is left; the call fails after one budget
    per model of the chain, and the error row says how long each model took (before: 8.5 s)."""
    from elfctl import llm
    from elfctl.errors import ElfError

    store = _ready(llm_env, llm_server, monkeypatch, timeout_s=1.2, retry_max_tries=5)
    llm_server.stall("*", seconds=30)
    t0 = time.monotonic()
    with pytest.raises(ElfError, match="every model failed"):
        llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    took = time.monotonic() - t0
    assert took <= 2 * BUDGET + MARGIN, took
    # 1.2 s attempts in a 3 s budget: 2 whole ones, and a third only if at least 0.25 s is left
    assert 2 <= llm_server.calls("gpt-4o") <= 3 and 3 <= llm_server.calls("gpt-4o-mini") <= 4  # + the warm-up
    row = store.query("SELECT * FROM api_usage WHERE team = 'alpha' AND outcome = 'error'")[0]
    for model in ("openai/gpt-4o", "openai/gpt-4o-mini"):
        assert _spent(row["fallback_reason"], model) <= BUDGET + MARGIN / 2, row["fallback_reason"]
    assert row["latency_ms"] <= (2 * BUDGET + MARGIN) * 1000 and row["cost_nanousd"] == 0


def test_retry_after_past_the_budget_falls_back_at_once(llm_env, llm_server, monkeypatch):
    """A 429 asking for 10 s when 3 s are left: waiting could only end in the fallback, so it comes
    now (before: it slept the rest of the budget and tried again)."""
    from elfctl import llm

    store = _ready(llm_env, llm_server, monkeypatch)
    llm_server.rate_limit("gpt-4o", retry_after=10)
    t0 = time.monotonic()
    resp = llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    assert time.monotonic() - t0 < BUDGET - 0.5  # it did not sleep out the budget
    assert resp._hidden_params["elfctl"]["model"] == "openai/gpt-4o-mini" and llm_server.calls("gpt-4o") == 1
    assert "openai/gpt-4o: rate_limit after" in usage(store)[-1]["fallback_reason"]


def test_acompletion_hung_provider_falls_back_within_the_budget(llm_env, llm_server, monkeypatch):
    from elfctl import llm

    _ready(llm_env, llm_server, monkeypatch, timeout_s=10)
    llm_server.stall("gpt-4o", seconds=30)
    t0 = time.monotonic()
    resp = asyncio.run(llm.acompletion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5))
    took = time.monotonic() - t0
    assert BUDGET - SHORT <= took <= BUDGET + MARGIN, took
    assert resp._hidden_params["elfctl"]["model"] == "openai/gpt-4o-mini" and llm_server.calls("gpt-4o") == 1


def test_calls_under_a_budget_reuse_one_connection(llm_env, llm_server, monkeypatch):
    """Each attempt's timeout is cut to the budget, yet calls keep reusing litellm's HTTP client: its
    clients are keyed by timeout, so a raw remaining time built a new client and a new connection on
    every call (+1.5 ms per call, and a client cache growing without end in a long-running process)."""
    from elfctl import llm

    _ready(llm_env, llm_server, monkeypatch, timeout_s=10)  # timeout above the 3 s budget: it is cut
    llm_server.peers.clear()
    for _ in range(12):
        llm.completion(team="alpha", model="openai/gpt-4o-mini", messages=MSG, api_base=llm_server.url, max_tokens=5)
    assert len(llm_server.peers) <= 2, llm_server.peers
