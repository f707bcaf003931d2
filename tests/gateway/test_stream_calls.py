"""A streamed call on the Caller's path (services/llm/stream.py) through the gateway's HTTP client
(adapters/openai_http.py) against the local provider (tests/llm_server.py), on SQLite and Postgres:
the chain, breakers and retries until the first chunk, and the call settled with the upstream's usage
or, cut short, with the counted tokens of what arrived; the reservation settled either way."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

MSG = [{"role": "user", "content": "tell me a story"}]
WORDS = " ".join(f"w{i}" for i in range(400))  # 400 content chunks when streamed


@pytest.fixture
def env(store_url, project, monkeypatch, llm_server):
    """(caller, store) for the project: a Caller on the gateway's client to the local provider."""
    from elfctl import config
    from elfctl.adapters import openai_http
    from elfctl.bootstrap import migrations_dir, open_store, price_book
    from elfctl.services.llm import app as llm_app
    from elfctl.services.llm.call import Caller
    from elfctl.services.platform import migrate

    with open(project / "elfctl.toml", "a") as f:
        f.write("[llm]\ntimeout_s = 2.0\nretry_max_time_s = 3.0\nretry_max_tries = 2\n"
                "breaker_fail_max = 3\nbreaker_reset_s = 1.0\n")
    monkeypatch.setenv("ELFCTL_STORE_URL", store_url)
    cfg = config.load(cwd=project)
    store = open_store(cfg)
    migrate.migrate(store, migrations_dir(cfg))
    caller = Caller(store, price_book(cfg), openai_http.Client(llm_server.url), llm_app.spool(cfg),
                    llm_app.settings(cfg))
    yield caller, store
    caller.recorder.close()
    store.close()


def _policy(store, chain=("openai/gpt-4o", "openai/gpt-4o-mini"), daily_usd=None):
    from elfctl.domain.budget import Budget
    from elfctl.services.cost import budgets
    from elfctl.services.llm.call import Policy

    budget = None
    if daily_usd is not None:
        budget = budgets.set_budget(store, Budget("alpha", daily_nanousd=int(daily_usd * 10**9)))
    return Policy("alpha", list(chain), budget)


def _rows(caller, store):
    caller.recorder.flush()
    return store.query("SELECT * FROM api_usage WHERE team = 'alpha' ORDER BY id")


def _held(store) -> int:
    """What the team's budget still holds in reservations (0 once every call is settled)."""
    rows = store.query("SELECT COUNT(*) AS n FROM budget_reservations WHERE team = 'alpha'")
    held = store.query("SELECT SUM(reserved_nanousd) AS r FROM spend_counters WHERE team = 'alpha'")
    return int(rows[0]["n"]) + int(held[0]["r"] or 0)


def _tokens(text: str) -> int:
    from elfctl.adapters.litellm_client import count_text_tokens

    return count_text_tokens("openai/gpt-4o-mini", text)


async def _drain(stream, upto=None) -> list[dict]:
    """The stream's chunks, parsed: the provider's bytes come through unparsed (usage chunk aside)."""
    got = []
    async for chunk in stream:
        got.append(json.loads(chunk) if isinstance(chunk, bytes) else chunk)
        if upto is not None and len(got) >= upto:
            break
    return got


def test_full_stream_is_settled_with_the_upstream_usage(env, llm_server):
    from elfctl.services.llm.stream import open_stream

    caller, store = env
    llm_server.answer("gpt-4o", prompt=21, completion=7, content="one two three")
    policy = _policy(store, daily_usd=5)

    async def go():
        return await _drain(await open_stream(caller, policy, {"messages": MSG, "max_tokens": 50}))

    chunks = asyncio.run(go())
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "one two three"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 7
    # the client did not ask for usage: the upstream was asked anyway
    assert llm_server.requests[-1]["stream_options"] == {"include_usage": True}
    row = _rows(caller, store)[-1]
    assert (row["model"], row["prompt_tokens"], row["completion_tokens"]) == ("openai/gpt-4o", 21, 7)
    assert row["cost_nanousd"] == 21 * 2500 + 7 * 10000  # gpt-4o's prices in litellm's map
    assert _held(store) == 0


def test_fallback_and_retries_apply_until_the_first_chunk(env, llm_server):
    from elfctl.services.llm.stream import open_stream

    caller, store = env
    llm_server.fail("gpt-4o", status=500)
    llm_server.answer("gpt-4o-mini", content="fine")

    async def go():
        return await _drain(await open_stream(caller, _policy(store), {"messages": MSG}))

    chunks = asyncio.run(go())
    assert chunks[1]["choices"][0]["delta"]["content"] == "fine"
    assert llm_server.calls("gpt-4o") == 2  # retried once (retry_max_tries = 2), then the next model
    row = _rows(caller, store)[-1]
    assert row["model"] == "openai/gpt-4o-mini" and "openai/gpt-4o: server" in row["fallback_reason"]


def test_every_model_failing_raises_before_any_chunk(env, llm_server):
    from elfctl.adapters.litellm_client import LLMError
    from elfctl.services.llm.stream import open_stream

    caller, store = env
    llm_server.fail("*", status=503)

    with pytest.raises(LLMError) as e:
        asyncio.run(open_stream(caller, _policy(store, daily_usd=5), {"messages": MSG}))
    assert e.value.kind == "exhausted"
    assert _rows(caller, store)[-1]["outcome"] == "error"
    assert _held(store) == 0


def test_consumer_gone_mid_stream_is_charged_for_what_arrived(env, llm_server):
    """The consumer stops after 6 chunks: the upstream is closed (it stops sending long before its 400
    words), and the row holds the counted tokens of what arrived, not the 9999 a full answer claims."""
    from elfctl.services.llm.stream import open_stream

    caller, store = env
    llm_server.answer("gpt-4o", prompt=30, completion=9999, content=WORDS, chunk_delay=0.01)
    policy = _policy(store, daily_usd=5)

    async def go():
        stream = await open_stream(caller, policy, {"messages": MSG})
        got = await _drain(stream, upto=6)
        await stream.aclose()
        return stream, got

    stream, got = asyncio.run(go())
    seen = "".join(c["choices"][0]["delta"].get("content") or "" for c in got)
    row = _rows(caller, store)[-1]
    assert row["completion_tokens"] == _tokens(seen) > 0
    assert row["prompt_tokens"] == caller.client.count_prompt_tokens("openai/gpt-4o", {"messages": MSG})
    assert _held(store) == 0
    deadline = time.monotonic() + 30
    while not llm_server.streams[-1]["gone"] and time.monotonic() < deadline:
        time.sleep(0.02)
    sent = llm_server.streams[-1]
    assert sent["gone"] and not sent["finished"] and sent["chunks"] < 50


def test_upstream_stalling_mid_stream_is_cut_at_the_timeout(env, llm_server):
    """llm.timeout_s = 2: three words arrive, then silence; the stream raises after ~2 s (not the 30 s
    stall) and the row holds the three words' tokens."""
    from elfctl.adapters.litellm_client import LLMError
    from elfctl.services.llm.stream import open_stream

    caller, store = env
    llm_server.answer("gpt-4o", prompt=30, completion=9999, content="alpha beta gamma delta epsilon")
    llm_server.stream_stall("gpt-4o", after=3, seconds=30)
    policy = _policy(store, daily_usd=5)
    got: list[dict] = []

    async def go():
        stream = await open_stream(caller, policy, {"messages": MSG})
        async for chunk in stream:
            got.append(chunk)

    t0 = time.monotonic()
    with pytest.raises(LLMError) as e:
        asyncio.run(go())
    took = time.monotonic() - t0
    assert e.value.kind == "timeout" and "stalled" in e.value.message
    assert 1.9 <= took <= 2 + 8, took  # cut at the 2 s timeout, not at the 30 s stall (slack for a loaded host)
    assert len(got) == 4  # the role chunk and three words
    row = _rows(caller, store)[-1]
    assert row["completion_tokens"] == _tokens("alpha beta gamma") and _held(store) == 0


def test_upstream_cut_mid_stream_raises_and_charges_what_arrived(env, llm_server):
    from elfctl.adapters.litellm_client import LLMError
    from elfctl.services.llm.stream import open_stream

    caller, store = env
    llm_server.answer("gpt-4o", prompt=30, completion=9999, content="alpha beta gamma delta epsilon")
    llm_server.stream_drop("gpt-4o", after=2)

    async def go():
        await _drain(await open_stream(caller, _policy(store, daily_usd=5), {"messages": MSG}))

    with pytest.raises(LLMError) as e:
        asyncio.run(go())
    assert e.value.kind == "connection"
    row = _rows(caller, store)[-1]
    assert row["completion_tokens"] == _tokens("alpha beta") and _held(store) == 0


def test_cancelled_before_the_first_chunk_releases_the_reservation(env, llm_server):
    """A client gone while the provider has not answered yet: no row, nothing held."""
    from elfctl.services.llm.stream import open_stream

    caller, store = env
    llm_server.stall("gpt-4o", seconds=1.5)
    policy = _policy(store, daily_usd=5)

    async def go():
        task = asyncio.ensure_future(open_stream(caller, policy, {"messages": MSG}))
        await asyncio.sleep(0.5)
        assert _held(store) > 0  # the reservation is taken before the call
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert _held(store) == 0 and _rows(caller, store) == []
