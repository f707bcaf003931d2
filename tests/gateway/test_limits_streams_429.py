"""Provider rate limits from the answers that are not a plain 2xx JSON answer: a streamed answer (its
head carries the headers before the first chunk) and a 429 (which states the limit it hit). Through a
real gateway with the official openai SDK; team `alpha` calls gpt-4o-mini, then openai/gpt-4o
(tests/gateway/conftest.py). A reset may be given as a date (HTTP-date) as well as a duration."""

from __future__ import annotations

import datetime as dt
import email.utils
import time

import openai
import pytest

from tests.gateway.test_provider_limits import MSG, _api_quota


def _client(gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=60)


def _call(gateway, key: str, stream: bool) -> str:
    """One call for gpt-4o-mini; the model that answered (x-elfctl-model)."""
    client = _client(gateway, key)
    if not stream:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
        raw.parse()
        return raw.headers["x-elfctl-model"]
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5, stream=True))
    # A stream's head is sent before the model is known to hold: the provider's model name is in each chunk.
    return {"gpt-4o-mini": "gpt-4o-mini", "gpt-4o": "openai/gpt-4o"}[chunks[0].model]


def test_a_streamed_answer_states_what_is_left(gw_env, gateway, mint, llm_server, elfctl, store_url):
    project, store = gw_env
    llm_server.ratelimit("gpt-4o-mini", remaining_requests=60, limit_requests=100, remaining_tokens=9000,
                         limit_tokens=10000, reset_requests="30s", reset_tokens="30s")
    assert _call(gateway, mint("alpha"), stream=True) == "gpt-4o-mini"
    mini = _api_quota(elfctl, project, store_url)["provider:openai/gpt-4o-mini"]
    assert (mini["status"], mini["value"]) == ("healthy", 40.0), mini
    assert mini["detail"].startswith("60 of 100 requests, 9,000 of 10,000 tokens left"), mini


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_429_with_nothing_left_exhausts_the_model_until_its_reset(gw_env, gateway, mint, llm_server, elfctl,
                                                                    store_url, stream):
    from elfctl.services.actions import trail

    project, store = gw_env
    key = mint("alpha")
    reset = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)  # as an HTTP-date: whole seconds
    llm_server.ratelimit("gpt-4o-mini", remaining_requests=0, limit_requests=100,
                         reset_requests=email.utils.format_datetime(reset, usegmt=True))
    llm_server.rate_limit("gpt-4o-mini", retry_after=0)  # every gpt-4o-mini call: 429 with those headers
    assert _call(gateway, key, stream) == "openai/gpt-4o"  # the 429s, then the chain's next model
    tried = llm_server.calls("gpt-4o-mini")
    assert tried >= 1

    mini = _api_quota(elfctl, project, store_url)["provider:openai/gpt-4o-mini"]
    assert (mini["status"], mini["value"]) == ("exhausted", 100.0), mini
    assert mini["detail"].startswith("0 of 100 requests left (requests reset in "), mini
    # The api_quota policy acts on it: the next calls go to the next model without asking gpt-4o-mini.
    assert _call(gateway, key, stream) == "openai/gpt-4o"
    assert _call(gateway, key, stream) == "openai/gpt-4o"
    assert llm_server.calls("gpt-4o-mini") == tried
    acted = [(a.strategy, a.target, a.result) for a in trail.recent(store, team="alpha")]
    assert acted == [("degrade_service", "gpt-4o-mini -> openai/gpt-4o", "ok")], acted
    assert "gpt-4o-mini rate limit 100% used: 0 of 100 requests left" in trail.recent(store, team="alpha")[0].trigger

    llm_server.reset()  # the provider answers again; its window refills at the stated moment
    llm_server.answer("*", prompt=10, completion=5)
    deadline = time.monotonic() + 60
    while _call(gateway, key, stream) != "gpt-4o-mini":
        assert time.monotonic() < deadline, "gpt-4o-mini never served again after its stated reset"
        time.sleep(0.5)
    assert dt.datetime.now(dt.UTC) >= reset - dt.timedelta(seconds=1)  # not before the reset (1 s: clock rounding)
    restored = [(a.strategy, a.target) for a in trail.recent(store, team="alpha") if a.result == "restored"]
    assert restored == [("degrade_service", "openai/gpt-4o -> gpt-4o-mini")]
