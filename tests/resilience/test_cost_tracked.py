"""@cost_tracked: LLM calls made inside are attributed to its team and agent, whichever way they are
made: elfctl.llm, litellm with elfctl's callback, or the official openai SDK (attribution headers)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from elfctl.resilience import AGENT_HEADER, TEAM_HEADER, atag_request, cost_tracked, tag_request

MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def llm_project(sqlite_store, monkeypatch, llm_server):
    from elfctl import llm

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-" + os.urandom(4).hex())
    llm.reset()
    yield sqlite_store
    llm.reset()


def usage(store):
    return store.query("SELECT team, agent, source FROM api_usage ORDER BY ts")


def test_elfctl_llm_calls_take_the_team_and_agent(llm_project, llm_server):
    from elfctl import llm

    @cost_tracked(team="research", agent="summariser")
    def summarise():
        return llm.completion(model="openai/gpt-4o-mini", messages=MSG, api_base=llm_server.url)

    summarise()
    llm.flush(10)
    assert usage(llm_project) == [{"team": "research", "agent": "summariser", "source": "elfctl"}]


def test_async_tasks_keep_their_own_attribution(llm_project, llm_server):
    from elfctl import llm

    @cost_tracked(team="research")
    async def agent_run(name):
        @cost_tracked(agent=name)  # inner: the agent; the team comes from the outer one
        async def step():
            return await llm.acompletion(model="openai/gpt-4o-mini", messages=MSG, api_base=llm_server.url)

        return await step()

    async def main():
        await asyncio.gather(agent_run("alpha"), agent_run("beta"), agent_run("gamma"))

    asyncio.run(main())
    llm.flush(10)
    got = sorted((r["team"], r["agent"]) for r in usage(llm_project))
    assert got == [("research", "alpha"), ("research", "beta"), ("research", "gamma")]


def test_litellm_direct_calls_through_the_callback(llm_project, llm_server):
    from elfctl import llm
    from elfctl.adapters.litellm_client import sdk

    litellm = sdk()
    cb = llm.callback()  # no default team: the attribution decides
    litellm.callbacks.append(cb)
    try:
        @cost_tracked(team="support", agent="triage")
        def triage():
            return litellm.completion(model="openai/gpt-4o-mini", messages=MSG, api_base=llm_server.url,
                                      api_key="sk-x")

        litellm.completion(model="openai/gpt-4o-mini", messages=MSG, api_base=llm_server.url, api_key="sk-x")
        triage()
        end = time.monotonic() + 60
        # litellm runs success callbacks on its own thread (in a copy of our context), and callbacks left by
        # earlier tests may write a row first: wait for the one this test is about
        while not [r for r in usage(llm_project) if r["team"] == "support"] and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        litellm.callbacks.remove(cb)
    # the call outside @cost_tracked (made first) has no team: not recorded by this callback. (litellm keeps
    # callbacks of earlier tests in this process in internal lists, each with its own default team.)
    rows = usage(llm_project)
    assert [r for r in rows if r["team"] == "support"] == [{"team": "support", "agent": "triage", "source": "callback"}]
    assert not [r for r in rows if not r["team"]]


def test_openai_sdk_sends_the_attribution_headers(llm_server):
    import httpx
    import openai

    client = openai.OpenAI(base_url=llm_server.url, api_key="sk-test", max_retries=0,
                           http_client=httpx.Client(event_hooks={"request": [tag_request]}))

    @cost_tracked(team="research", agent="writer")
    def write():
        return client.chat.completions.create(model="gpt-4o-mini", messages=MSG)

    write()
    client.chat.completions.create(model="gpt-4o-mini", messages=MSG)  # outside: no headers
    inside, outside = llm_server.headers
    assert inside[AGENT_HEADER] == "writer" and inside[TEAM_HEADER] == "research"
    assert AGENT_HEADER not in outside and TEAM_HEADER not in outside


def test_async_openai_sdk_headers_follow_each_task(llm_server):
    import httpx
    import openai

    client = openai.AsyncOpenAI(base_url=llm_server.url, api_key="sk-test", max_retries=0,
                                http_client=httpx.AsyncClient(event_hooks={"request": [atag_request]}))

    async def main():
        @cost_tracked(team="research")
        async def run(agent, prompt):
            @cost_tracked(agent=agent)
            async def inner():
                return await client.chat.completions.create(model="gpt-4o-mini",
                                                            messages=[{"role": "user", "content": prompt}])

            return await inner()

        await asyncio.gather(*(run(f"agent-{i}", f"prompt-{i}") for i in range(5)))

    asyncio.run(main())
    pairs = {(r["messages"][0]["content"], h[AGENT_HEADER]) for r, h in zip(llm_server.requests, llm_server.headers,
                                                                               strict=True)}
    assert pairs == {(f"prompt-{i}", f"agent-{i}") for i in range(5)}


def test_no_team_anywhere_is_a_clear_error(llm_project):
    from elfctl import llm
    from elfctl.errors import InputError

    with pytest.raises(InputError, match="no team to attribute the call to"):
        llm.completion(model="openai/gpt-4o-mini", messages=MSG)


def test_bad_team_or_agent_refused_at_decoration():
    from elfctl.errors import InputError

    with pytest.raises(InputError, match="DNS-1123"):
        cost_tracked(team="Bad Team")
    for bad in ("line\nbreak", "x" * 129, "agent-é", " padded"):
        with pytest.raises(ValueError, match="agent"):
            cost_tracked(team="ok", agent=bad)
