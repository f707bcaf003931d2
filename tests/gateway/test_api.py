"""The gateway's OpenAI-compatible API as the official `openai` SDK sees it: answers, the ledger
row each call leaves (team from the key, agent from the header, revision from the key), and every
refusal as the SDK's own exception type."""

from __future__ import annotations

import asyncio
import datetime as dt

import openai
import pytest

from tests.gateway.conftest import PROVIDER_KEY, ledger, wait_rows, write_team

MSG = [{"role": "user", "content": "hello"}]


def sdk(gateway, key, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=30, **kw)


def test_chat_completion_is_answered_and_recorded_once(gw_env, gateway, mint, llm_server):
    project, store = gw_env
    llm_server.answer("gpt-4o-mini", prompt=1000, completion=200)
    client = sdk(gateway, mint("alpha", revision=7), default_headers={"X-Elfctl-Agent": "writer"})
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSG)
    resp = raw.parse()
    assert resp.choices[0].message.content == "ok" and resp.usage.prompt_tokens == 1000
    rows = wait_rows(store, 1)
    assert len(rows) == 1
    row = rows[0]
    # gpt-4o-mini: 1.5e-7 in, 6e-7 out USD/token (litellm's map): exact nano-dollars
    assert (row["team"], row["agent"], row["revision"]) == ("alpha", "writer", 7)
    assert row["cost_nanousd"] == 1000 * 150 + 200 * 600 and row["model"] == "gpt-4o-mini"
    assert raw.headers["x-request-id"] == row["request_id"]
    # The provider got the gateway's provider key, never the team's key.
    assert llm_server.auth[-1] == f"Bearer {PROVIDER_KEY}"


def test_team_comes_from_the_key_not_the_body(gw_env, gateway, mint, llm_server):
    _project, store = gw_env
    client = sdk(gateway, mint("beta"))
    client.chat.completions.create(model="gpt-4o", messages=MSG, user="alpha", extra_body={})
    rows = wait_rows(store, 1)
    assert [r["team"] for r in rows] == ["beta"]


def test_async_sdk_many_calls_all_recorded(gw_env, gateway, mint):
    _project, store = gw_env
    key = mint("alpha")

    async def main():
        async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key, max_retries=0) as client:
            got = await asyncio.gather(*(client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=MSG) for _ in range(20)))
            return [g.headers["x-request-id"] for g in got]

    ids = asyncio.run(main())
    rows = wait_rows(store, 20)
    assert sorted(r["request_id"] for r in rows) == sorted(ids) and len(set(ids)) == 20


def test_models_lists_the_teams_chain(gateway, mint):
    assert [m.id for m in sdk(gateway, mint("alpha")).models.list()] == ["gpt-4o-mini", "openai/gpt-4o"]
    assert [m.id for m in sdk(gateway, mint("beta")).models.list()] == ["gpt-4o"]


def test_embeddings_are_answered_and_costed(gw_env, gateway, mint, llm_server):
    project, store = gw_env
    write_team(project, "emb", "text-embedding-3-small")
    llm_server.answer("text-embedding-3-small", prompt=12, completion=0)
    resp = sdk(gateway, mint("emb")).embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(resp.data) == 2 and resp.usage.prompt_tokens == 12
    row = wait_rows(store, 1)[0]
    assert (row["team"], row["prompt_tokens"], row["cost_nanousd"]) == ("emb", 12, 12 * 20)  # 2e-8 USD/token


def test_fallback_runs_in_the_gateway(gw_env, gateway, mint, llm_server):
    _project, store = gw_env
    llm_server.fail("gpt-4o-mini", status=500)
    resp = sdk(gateway, mint("alpha")).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert resp.model == "gpt-4o"
    row = wait_rows(store, 1)[0]
    assert row["model"] == "openai/gpt-4o" and row["requested_model"] == "gpt-4o-mini" and row["fallback_reason"]


# --- refusals ---------------------------------------------------------------------------------------


def test_unknown_revoked_and_expired_keys_get_one_identical_401(gw_env, gateway, mint, llm_server, elfctl):
    project, store = gw_env
    live = mint("alpha")
    expired = mint("alpha", expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    bodies = set()
    for key in ("sk-not-a-gateway-key", "elf_00000000_" + "0" * 48, live[:-1] + ("0" if live[-1] != "0" else "1"),
                expired):
        with pytest.raises(openai.AuthenticationError) as e:
            sdk(gateway, key).chat.completions.create(model="gpt-4o-mini", messages=MSG)
        assert e.value.status_code == 401
        bodies.add(str(e.value.body))
    assert len(bodies) == 1  # nothing tells an existing team's key from a made-up one
    assert llm_server.calls() == 0 and ledger(store) == []


def test_a_revoked_key_is_refused_within_a_second(gw_env, gateway, mint, elfctl):
    import time

    project, _store = gw_env
    key = mint("alpha")
    client = sdk(gateway, key)
    client.models.list()  # the gateway now holds the key in its cache
    proc = elfctl("gateway", "key", "revoke", key[4:12], cwd=project)
    revoked = time.monotonic()
    assert proc.returncode == 0, proc.stderr
    while True:
        try:
            client.models.list()
        except openai.AuthenticationError:
            break
        assert time.monotonic() - revoked < 1.0, "a revoked key still served after 1 s"


def test_model_of_another_team_is_403_unknown_model_404(gw_env, gateway, mint, llm_server):
    _project, store = gw_env
    client = sdk(gateway, mint("beta"))
    with pytest.raises(openai.PermissionDeniedError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG)  # alpha's model
    assert e.value.code == "model_not_allowed"
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model-xyz", messages=MSG)
    assert e.value.code == "model_not_found"
    assert llm_server.calls() == 0 and ledger(store) == []


def test_budget_exhausted_is_429_with_seconds_to_the_reset(gw_env, gateway, mint, llm_server):
    project, store = gw_env
    write_team(project, "poor", "gpt-4o", budget={"daily_usd": "0.000001", "hard_action": "block"})
    # The first budgeted estimate loads litellm's tokenizer in the gateway: seconds on a busy machine.
    with pytest.raises(openai.RateLimitError) as e:
        sdk(gateway, mint("poor")).with_options(timeout=180).chat.completions.create(
            model="gpt-4o", messages=MSG, max_tokens=10)
    assert e.value.code == "budget_exceeded"
    now = dt.datetime.now(dt.UTC)
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC)
    after = int(e.value.response.headers["retry-after"])
    assert abs(after - (midnight - now).total_seconds()) <= 5
    assert llm_server.calls() == 0


def test_upstream_rate_limit_after_fallbacks_is_429_with_retry_after(gateway, mint, llm_server):
    llm_server.rate_limit("gpt-4o-mini", retry_after=7)
    llm_server.rate_limit("gpt-4o", retry_after=7)
    with pytest.raises(openai.RateLimitError) as e:
        sdk(gateway, mint("alpha")).chat.completions.create(model="gpt-4o-mini", messages=MSG)
    assert e.value.response.headers["retry-after"] == "7" and e.value.code == "rate_limited"
    assert llm_server.calls("gpt-4o") >= 1  # the fallback was tried first


def test_provider_failures_after_fallbacks_are_502_and_504(gateway, mint, llm_server):
    client = sdk(gateway, mint("beta"))
    llm_server.fail("gpt-4o", status=500)
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    assert e.value.status_code == 502
    llm_server.stall("gpt-4o", seconds=3)  # past llm.timeout_s (1 s) and the retry budget
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="gpt-4o", messages=MSG)
    assert e.value.status_code == 504


def test_provider_validation_error_passes_through(gw_env, gateway, mint, llm_server):
    _project, store = gw_env
    llm_server.fail("gpt-4o", status=400)
    with pytest.raises(openai.BadRequestError) as e:
        sdk(gateway, mint("beta")).chat.completions.create(model="gpt-4o", messages=MSG)
    assert e.value.body["message"] == "test server: 400 for gpt-4o"
    assert llm_server.calls("gpt-4o") == 1  # a bad request is not retried nor sent to a fallback
    assert [r["outcome"] for r in ledger(store)] == []
