"""`elfctl cost dashboard --watch` in a real terminal (tmux) shows a call made through the gateway (a real
server process, the official `openai` SDK as the client) within 2 s of the client's 200, on SQLite and
Postgres: the gateway's background writer commits the row, the dashboard's next refresh reads it.

The bound is the issue's (2 s). The view refreshes every `--interval` seconds, so a call landing just
after a refresh waits a whole interval: the default of 2 s cannot meet a 2 s bound, 1 s can."""

from __future__ import annotations

import shlex
import sys

import openai

from tests.terminal import Terminal

BOUND_S = 2.0


def test_a_gateway_call_is_on_the_watching_dashboard_within_2_s(gw_env, gateway, mint, llm_server, store_url):
    from elfctl.services.cost.views import usd

    project, _store = gw_env
    # gpt-4o-mini at $0.15 / $0.60 per million tokens: 2,000,000 in and 500,000 out cost $0.60 exactly.
    llm_server.answer("gpt-4o-mini", prompt=2_000_000, completion=500_000)
    cost = usd(2_000_000 * 150 + 500_000 * 600)
    assert cost == "$0.60"
    cmd = (f"cd {shlex.quote(str(project))} && ELFCTL_STORE_URL={shlex.quote(store_url)} "
           f"{shlex.quote(sys.executable)} -m elfctl cost dashboard --watch --interval 1")
    with Terminal(cmd, width=200, height=60) as term:
        before = term.wait_for("Open breakers")  # drawn, before any call
        assert "today $0.00 in 0 calls" in before and "alpha" not in before
        client = openai.OpenAI(base_url=gateway.base_url, api_key=mint("alpha"), max_retries=0, timeout=30)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        # From the 200 on, a bounded wait for the text: the call's cost in the totals and its team's row.
        screen = term.wait_for(f"today {cost} in 1 calls", timeout=BOUND_S)
        assert [line for line in screen.splitlines() if "alpha" in line and cost in line], screen
