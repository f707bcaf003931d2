"""`cost report --by revision` (and `--by agent`) over calls made through the gateway."""

from __future__ import annotations

import json

import openai

from tests.gateway.conftest import wait_rows

MSG = [{"role": "user", "content": "hello"}]


def test_report_by_revision_and_agent(gw_env, gateway, mint, llm_server, elfctl):
    project, store = gw_env
    calls = {(1, "writer"): 2, (2, "writer"): 1, (2, "critic"): 3}
    for (revision, agent), n in calls.items():
        client = openai.OpenAI(base_url=gateway.base_url, api_key=mint("alpha", revision=revision), max_retries=0,
                               default_headers={"X-Elfctl-Agent": agent})
        for _ in range(n):
            client.chat.completions.create(model="gpt-4o-mini", messages=MSG)
    openai.OpenAI(base_url=gateway.base_url, api_key=mint("beta"), max_retries=0).chat.completions.create(
        model="gpt-4o", messages=MSG)
    wait_rows(store, 7)
    proc = elfctl("--json", "cost", "report", "--by", "revision", cwd=project)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert {r["key"]: r["calls"] for r in rep["rows"]} == {"alpha r1": 2, "alpha r2": 4, "beta (no revision)": 1}
    per_call = 10 * 150 + 5 * 600  # gpt-4o-mini, 10 prompt and 5 completion tokens
    assert {r["key"]: r["cost_nanousd"] for r in rep["rows"]}["alpha r2"] == 4 * per_call
    assert rep["total"]["calls"] == 7
    proc = elfctl("--json", "cost", "report", "--by", "agent", "--team", "alpha", cwd=project)
    assert {r["key"]: r["calls"] for r in json.loads(proc.stdout)["rows"]} == {"alpha critic": 3, "alpha writer": 3}
    human = elfctl("cost", "report", "--by", "revision", "--team", "alpha", cwd=project, env={"COLUMNS": "200"})
    assert "alpha r1" in human.stdout and "alpha r2" in human.stdout
