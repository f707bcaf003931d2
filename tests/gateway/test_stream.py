"""`stream: true` through the gateway as a real server process, as the official `openai` SDK (sync and
async) sees it, with tests/llm_server.py as the provider: the exact chunk stream ending with
`data: [DONE]`, the usage chunk only for a client that asked, every streamed call in the ledger
(its reservation settled), errors before the first byte as HTTP statuses and after it as an error
event the SDK raises on, and a client that leaves mid-stream charged for what was generated only."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from tests.gateway.conftest import wait_rows

MSG = [{"role": "user", "content": "tell me a story"}]
WORDS = " ".join(f"w{i}" for i in range(400))  # 400 content chunks when streamed


def sdk(gateway, key, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=60, **kw)


def _budget(store, usd: float = 5.0):
    from elfctl.domain.budget import Budget
    from elfctl.services.cost import budgets

    budgets.set_budget(store, Budget("alpha", daily_nanousd=int(usd * 10**9)))


def _held(store) -> int:
    """What alpha's budget still holds in reservations (0 once every call is settled)."""
    n = store.query("SELECT COUNT(*) AS n FROM budget_reservations WHERE team = 'alpha'")[0]["n"]
    held = store.query("SELECT SUM(reserved_nanousd) AS r FROM spend_counters WHERE team = 'alpha'")[0]["r"]
    return int(n) + int(held or 0)


def _tokens(text: str) -> int:
    from elfctl.adapters.litellm_client import count_text_tokens

    return count_text_tokens("gpt-4o-mini", text)


def _settled(store, n: int = 1) -> list[dict]:
    """The ledger once it holds n rows and nothing is held in reservations. A call cut short is
    counted with litellm's counter, whose first use in a process imports litellm (seconds here)."""
    rows = wait_rows(store, n, timeout_s=60)
    deadline = time.monotonic() + 10
    while _held(store) and time.monotonic() < deadline:
        time.sleep(0.02)
    return rows


def _text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def _until(cond, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_sync_stream_is_the_providers_and_recorded_with_its_usage(gw_env, gateway, mint, llm_server):
    """The client did not ask for usage: no chunk carries it, yet the ledger has the provider's own
    numbers (the gateway asked the provider for them)."""
    _project, store = gw_env
    _budget(store)
    llm_server.answer("gpt-4o-mini", prompt=1000, completion=200, content="one two three four")
    raw = sdk(gateway, mint("alpha", revision=3)).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MSG, stream=True)
    chunks = list(raw.parse())
    assert _text(chunks) == "one two three four"
    assert all(c.choices and c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert llm_server.requests[-1]["stream_options"] == {"include_usage": True}
    (row,) = _settled(store)
    assert (row["team"], row["revision"], row["prompt_tokens"], row["completion_tokens"]) == ("alpha", 3, 1000, 200)
    assert row["cost_nanousd"] == 1000 * 150 + 200 * 600  # gpt-4o-mini's prices, exact
    assert raw.headers["x-request-id"] == row["request_id"]
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert _held(store) == 0


def test_the_wire_format_ends_with_done(gw_env, gateway, mint, llm_server):
    llm_server.answer("gpt-4o-mini", content="a b")
    body = {"model": "gpt-4o-mini", "messages": MSG, "stream": True}
    r = httpx.post(gateway.base_url + "/chat/completions", json=body, timeout=30,
                   headers={"authorization": f"Bearer {mint('alpha')}"})
    assert r.status_code == 200
    events = r.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert all(e.startswith("data: {") for e in events[:-2]) and len(events) == 2 + 4  # role, a, b, stop


@pytest.mark.parametrize("include_usage", [True, False])
def test_chunks_are_the_providers_bytes_forwarded(gw_env, gateway, mint, llm_server, include_usage):
    """Each event is the provider's JSON byte for byte (its key order, its `\\u00e9` escapes), not a
    re-encoding; a client that did not ask for usage gets them without the `"usage":null` field and
    without the usage chunk, and no event of its stream says "usage" at all."""
    llm_server.answer("gpt-4o-mini", prompt=12, completion=3, content="café crème brûlée")
    body = {"model": "gpt-4o-mini", "messages": MSG, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    r = httpx.post(gateway.base_url + "/chat/completions", json=body, timeout=30,
                   headers={"authorization": f"Bearer {mint('alpha')}"})
    assert r.status_code == 200
    got = [e.removeprefix("data: ").encode() for e in r.text.split("\n\n")[:-2]]
    sent = llm_server.streams[-1]["sent"]
    assert b'"usage":null' in sent[0] and b"\\u00e9" in sent[1]  # what the stub sends, usage asked
    if include_usage:
        assert got == sent
    else:
        assert got == [e.replace(b',"usage":null', b"") for e in sent[:-1]]
        assert "usage" not in r.text


def test_async_stream_with_include_usage_gets_the_usage_chunk(gw_env, gateway, mint, llm_server):
    _project, store = gw_env
    llm_server.answer("gpt-4o-mini", prompt=40, completion=3, content="x y z")
    key = mint("alpha")

    async def main():
        async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key, max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=MSG, stream=True, stream_options={"include_usage": True})
            return [c async for c in stream]

    chunks = asyncio.run(main())
    assert _text(chunks) == "x y z"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3
    assert all(c.usage is None for c in chunks[:-1])
    (row,) = _settled(store)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (40, 3)


def test_async_streams_side_by_side_are_each_recorded(gw_env, gateway, mint, llm_server):
    _project, store = gw_env
    llm_server.answer("gpt-4o-mini", prompt=10, completion=4, content="p q r s", chunk_delay=0.01)
    key = mint("alpha")

    async def one(client):
        return _text([c async for c in await client.chat.completions.create(
            model="gpt-4o-mini", messages=MSG, stream=True)])

    async def main():
        async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key, max_retries=0) as client:
            return await asyncio.gather(*(one(client) for _ in range(12)))

    assert asyncio.run(main()) == ["p q r s"] * 12
    rows = _settled(store, 12)
    assert len(rows) == 12 and {r["completion_tokens"] for r in rows} == {4}


def test_client_gone_mid_stream_is_charged_for_what_was_generated(gw_env, gateway, mint, llm_server):
    """The client reads 6 chunks and closes the connection: the gateway closes the provider's stream
    (it stops sending long before its 400 words) and records the counted tokens of what the provider
    sent, not the 9999 a whole answer claims; the reservation is settled."""
    _project, store = gw_env
    _budget(store)
    llm_server.answer("gpt-4o-mini", prompt=30, completion=9999, content=WORDS, chunk_delay=0.01)
    stream = sdk(gateway, mint("alpha")).chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
    seen = []
    for chunk in stream:
        seen.append(chunk)
        if len(seen) == 6:
            break
    stream.close()
    _until(lambda: llm_server.streams and llm_server.streams[-1]["gone"])
    sent = llm_server.streams[-1]
    assert sent["gone"] and not sent["finished"] and sent["chunks"] < 100
    (row,) = _settled(store)
    assert _tokens(_text(seen)) <= row["completion_tokens"] <= _tokens(sent["text"])
    assert row["prompt_tokens"] < 100 and _held(store) == 0


def test_client_gone_before_the_first_chunk_is_charged_only_what_came(gw_env, gateway, mint, llm_server):
    """The provider is slow to start (0.6 s) and the client gives up at 0.2 s: once the first chunk
    comes the gateway sees the client gone and closes the provider's stream at once; what the provider
    sent until then is charged, no more."""
    _project, store = gw_env
    _budget(store)
    llm_server.answer("gpt-4o-mini", prompt=30, completion=9999, content=WORDS, delay=0.6, chunk_delay=0.01)
    client = openai.OpenAI(base_url=gateway.base_url, api_key=mint("alpha"), max_retries=0, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
    (row,) = _settled(store)
    _until(lambda: all(s["gone"] for s in llm_server.streams))
    sent = llm_server.streams[-1]  # earlier ones: attempts whose first chunk came too late (then retried)
    assert sent["gone"] and sent["chunks"] < 100
    assert row["completion_tokens"] <= _tokens(sent["text"]) and _held(store) == 0


def test_provider_stalling_mid_stream_ends_it_with_an_error_the_sdk_raises(gw_env, gateway, mint, llm_server):
    """llm.timeout_s = 1: three words, then silence; the SDK raises APIError about 1 s later (not after
    the 30 s stall); the three words are charged."""
    _project, store = gw_env
    _budget(store)
    llm_server.answer("gpt-4o-mini", prompt=30, completion=9999, content="alpha beta gamma delta epsilon")
    llm_server.stream_stall("gpt-4o-mini", after=3, seconds=30)
    client = sdk(gateway, mint("alpha"))
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG)  # the gateway's one-off imports, untimed
    seen = []
    t0 = time.monotonic()
    with pytest.raises(openai.APIError) as e:
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True):
            seen.append(chunk)
    took = time.monotonic() - t0
    assert "stalled" in e.value.message and e.value.code == "provider_timeout"
    assert took < 1 + 8, took  # cut at the 1 s timeout, not at the 30 s stall (slack for a loaded host)
    assert _text(seen) == "alpha beta gamma"
    row = _settled(store, 2)[-1]
    assert row["completion_tokens"] == _tokens("alpha beta gamma") and _held(store) == 0


def test_provider_cut_mid_stream_ends_it_with_an_error_the_sdk_raises(gw_env, gateway, mint, llm_server):
    _project, store = gw_env
    llm_server.answer("gpt-4o-mini", prompt=30, completion=9999, content="alpha beta gamma delta epsilon")
    llm_server.stream_drop("gpt-4o-mini", after=2)
    seen = []
    with pytest.raises(openai.APIError) as e:
        for chunk in sdk(gateway, mint("alpha")).chat.completions.create(model="gpt-4o-mini", messages=MSG,
                                                                         stream=True):
            seen.append(chunk)
    assert e.value.code == "provider_error" and _text(seen) == "alpha beta"
    (row,) = _settled(store)
    assert row["completion_tokens"] == _tokens("alpha beta")


def test_fallback_applies_until_the_first_chunk(gw_env, gateway, mint, llm_server):
    _project, store = gw_env
    llm_server.fail("gpt-4o-mini", status=500)
    llm_server.answer("gpt-4o", content="from the fallback")
    chunks = list(sdk(gateway, mint("alpha")).chat.completions.create(model="gpt-4o-mini", messages=MSG,
                                                                      stream=True))
    assert _text(chunks) == "from the fallback"
    (row,) = _settled(store)
    assert row["model"] == "openai/gpt-4o" and "gpt-4o-mini: server" in row["fallback_reason"]


def test_errors_before_the_first_byte_are_http_statuses(gw_env, gateway, mint, llm_server):
    _project, store = gw_env
    client = sdk(gateway, mint("alpha"))
    llm_server.fail("*", status=500)
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
    assert e.value.status_code == 502
    llm_server.reset()
    llm_server.rate_limit("*", retry_after=7)
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
    assert e.value.response.headers["retry-after"] == "7"
    assert not llm_server.streams  # no provider stream was ever opened


def test_an_exhausted_budget_is_a_429_before_any_byte(gw_env, gateway, mint, llm_server):
    _project, store = gw_env
    _budget(store, usd=1e-9)  # one nano-dollar: no call fits
    with pytest.raises(openai.RateLimitError) as e:
        sdk(gateway, mint("alpha")).chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True)
    assert e.value.code == "budget_exceeded" and int(e.value.response.headers["retry-after"]) > 0
    assert llm_server.calls() == 0 and _held(store) == 0


@pytest.mark.parametrize("options", ["yes", {"include_usage": "yes"}, {"include_usage": True, "x": 1}, [1]])
def test_malformed_stream_options_are_a_400_naming_them(gw_env, gateway, mint, llm_server, options):
    _project, store = gw_env
    with pytest.raises(openai.BadRequestError) as e:
        sdk(gateway, mint("alpha")).chat.completions.create(model="gpt-4o-mini", messages=MSG, stream=True,
                                                            stream_options=options)
    assert e.value.param == "stream_options" and "stream_options must be" in e.value.message
    assert llm_server.calls() == 0 and not store.query("SELECT 1 FROM api_usage")
