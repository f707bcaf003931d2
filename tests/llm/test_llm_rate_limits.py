"""Provider rate limits from calls made in-process through `elfctl.llm` (real litellm against
tests/llm_server.py): litellm passes the provider's headers on as `llm_provider-x-ratelimit-*` in the
answer's _hidden_params and on its errors; both are kept in provider_limits, resets included, where
`elfctl resources` and every gateway read them."""

from __future__ import annotations

import datetime as dt

from tests.llm.test_calls import MSG, _team


def _row(store, model: str) -> dict:
    rows = store.query("SELECT * FROM provider_limits WHERE provider = 'openai' AND model = ?", (model,))
    assert len(rows) == 1, rows
    return rows[0]


def test_an_answer_through_litellm_keeps_the_limit_and_its_reset(llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project)
    llm_server.ratelimit("gpt-4o", remaining_requests=3, limit_requests=100, remaining_tokens=900,
                         limit_tokens=1000, reset_requests="6m0s", reset_tokens="1.5s")
    before = dt.datetime.now(dt.UTC)
    resp = llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    assert resp._hidden_params["elfctl"]["model"] == "openai/gpt-4o"
    row = _row(store, "gpt-4o")
    assert (row["remaining_requests"], row["limit_requests"], row["remaining_tokens"], row["limit_tokens"]) == \
        (3, 100, 900, 1000)
    reset = dt.datetime.fromisoformat(row["reset_requests_at"])
    assert before + dt.timedelta(seconds=359) <= reset <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=361)


def test_a_429_through_litellm_keeps_the_limit_it_hit(llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project)
    reset = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).replace(microsecond=0)
    llm_server.ratelimit("gpt-4o", remaining_requests=0, limit_requests=100,
                         reset_requests=reset.isoformat().replace("+00:00", "Z"))  # RFC 3339
    llm_server.rate_limit("gpt-4o", retry_after=0)
    resp = llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    assert resp._hidden_params["elfctl"]["model"] == "openai/gpt-4o-mini"  # the chain's next model answered
    row = _row(store, "gpt-4o")
    assert (row["remaining_requests"], row["limit_requests"]) == (0, 100)
    assert dt.datetime.fromisoformat(row["reset_requests_at"]) == reset
