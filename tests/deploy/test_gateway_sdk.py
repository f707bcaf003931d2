"""The key a deploy put into a team's replicas, as the gateway and the official `openai` SDK see it:
it works (the call is in the ledger under the team and the deployed revision), and once the next
revision replaced it the gateway refuses it (AuthenticationError) while the new key works."""

from __future__ import annotations

import json
import time

import openai
import pytest

from tests.conftest import run_elfctl
from tests.deploy.conftest import make_team, set_version
from tests.deploy.test_gateway_keys import _replica_env
from tests.gateway.conftest import GatewayProcess


def _ask(gw: GatewayProcess, key: str) -> str:
    client = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=90)  # the first call warms the gateway up
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], extra_headers={"X-Elfctl-Agent": "writer"})
    return raw.headers["x-request-id"]


def _usage(project, request_id: str, timeout_s: float = 10) -> dict:
    from elfctl import config
    from elfctl.bootstrap import open_store

    store = open_store(config.load(cwd=project))
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            rows = store.query("SELECT team, agent, revision FROM api_usage WHERE request_id = ?", (request_id,))
            if rows or time.monotonic() > deadline:
                return rows[0] if rows else {}
            time.sleep(0.05)
    finally:
        store.close()


def test_deployed_key_calls_the_gateway_until_replaced(project, docker_env, team_name, engine, llm_server):
    env = dict(docker_env)
    prefix = env["ELFCTL_DEPLOY_PREFIX"]
    folder = make_team(project, env, team_name)
    first = run_elfctl("deploy", team_name, "--json", cwd=project, env=env, timeout=180)
    assert first.returncode == 0, first.stderr
    key1 = _replica_env(engine, prefix, team_name, 1)[0]["OPENAI_API_KEY"]

    gw = GatewayProcess(project, f"sqlite:///{project / '.elf' / 'elf.db'}", llm_server.url).start()
    try:
        rid = _ask(gw, key1)
        assert _usage(project, rid) == {"team": team_name, "agent": "writer", "revision": 1}

        set_version(folder, "v2")
        second = run_elfctl("deploy", team_name, "--json", cwd=project, env=env, timeout=180)
        assert second.returncode == 0 and json.loads(second.stdout)["revision"] == 2, second.stderr
        key2 = _replica_env(engine, prefix, team_name, 2)[0]["OPENAI_API_KEY"]
        refused_by = time.monotonic() + 1.5  # the gateway's key cache: a revocation holds within 1 s
        while True:
            try:
                _ask(gw, key1)
            except openai.AuthenticationError:
                break
            assert time.monotonic() < refused_by, "the replaced revision's key still works"
            time.sleep(0.1)
        assert _usage(project, _ask(gw, key2))["revision"] == 2
        with pytest.raises(openai.AuthenticationError):
            _ask(gw, key1)
    except Exception:
        print(gw.log.read_text()[-4000:])
        raise
    finally:
        gw.stop()
