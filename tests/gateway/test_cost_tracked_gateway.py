"""`@cost_tracked` end to end: team code using the official openai SDK (sync and async), pointed at a real
gateway with the attribution hook, gets its ledger rows attributed to the decorated function's agent;
the team is always the key's (a decorator cannot spend another team's budget)."""

from __future__ import annotations

import asyncio

import httpx
import openai

from elfctl.resilience import atag_request, cost_tracked, tag_request
from tests.gateway.conftest import wait_rows


def _rows(store) -> list[tuple[str, str | None, str]]:
    return sorted(((r["team"], r["agent"], r["model"]) for r in store.query("SELECT * FROM api_usage")),
                  key=lambda t: (t[0], t[1] or ""))


def test_sync_sdk_calls_carry_the_decorated_functions_agent(gw_env, gateway, mint, llm_server):
    _project, store = gw_env
    client = openai.OpenAI(base_url=gateway.base_url, api_key=mint("alpha"), max_retries=0, timeout=60,
                           http_client=httpx.Client(event_hooks={"request": [tag_request]}))

    @cost_tracked(team="alpha", agent="summariser")
    def summarise(text: str) -> str:
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])
        return answer.choices[0].message.content

    @cost_tracked(team="beta", agent="impostor")  # a team the key does not belong to
    def other_team() -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])

    assert summarise("a long text") == "ok"
    other_team()
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "outside"}])
    wait_rows(store, 3)
    assert _rows(store) == [("alpha", None, "gpt-4o-mini"), ("alpha", "impostor", "gpt-4o-mini"),
                            ("alpha", "summariser", "gpt-4o-mini")]


def test_async_sdk_tasks_each_keep_their_agent(gw_env, gateway, mint, llm_server):
    _project, store = gw_env
    key = mint("alpha")

    async def main():
        client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=60,
                                    http_client=httpx.AsyncClient(event_hooks={"request": [atag_request]}))

        @cost_tracked(team="alpha")
        async def run(agent: str):
            @cost_tracked(agent=agent)  # inner: the agent; the team from the outer one
            async def step():
                await asyncio.sleep(0)  # the tasks interleave
                return await client.chat.completions.create(model="gpt-4o-mini",
                                                            messages=[{"role": "user", "content": agent}])

            return await step()

        await asyncio.gather(*(run(f"agent-{i}") for i in range(5)))
        await client.close()

    asyncio.run(main())
    wait_rows(store, 5)
    assert _rows(store) == [("alpha", f"agent-{i}", "gpt-4o-mini") for i in range(5)]
    # each task's prompt was its agent's name: each row is attributed to the task that made the call
    from elfctl.domain.usage import prompt_hash

    rows = store.query("SELECT agent, prompt_hash FROM api_usage")
    assert {r["prompt_hash"]: r["agent"] for r in rows} == {
        prompt_hash([{"role": "user", "content": f"agent-{i}"}]): f"agent-{i}" for i in range(5)}
    assert all("X-Elfctl-Agent" not in h for h in llm_server.headers)  # not passed on to the provider
