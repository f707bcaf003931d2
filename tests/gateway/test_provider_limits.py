"""A provider's remaining rate limit, from the x-ratelimit-* headers of each answer through the gateway:
`elfctl resources` shows it (api_quota), and a model whose window is nearly spent is passed over for the
next model of the team's chain (the api_quota policy), in the trail, until its window refills. Team
`alpha` calls gpt-4o-mini, then openai/gpt-4o (tests/gateway/conftest.py)."""

from __future__ import annotations

import json
import time

import openai

MSG = [{"role": "user", "content": "hello"}]
CALM = {"ELFCTL_RESOURCES_CPU_WARNING": "1000", "ELFCTL_RESOURCES_CPU_CRITICAL": "1000",
        "ELFCTL_DEPLOY_TARGET": "kubernetes", "KUBECONFIG": "/nonexistent",  # no engine, no cluster needed
        "ELFCTL_RESOURCES_TIMEOUT_S": "30"}  # a loaded machine must not time the quota reading out


def _served(gateway, key: str) -> str:
    """The model that answered one call (the gateway's x-elfctl-model header)."""
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=60)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
    raw.parse()
    return raw.headers["x-elfctl-model"]


def _api_quota(elfctl, project, store_url) -> dict:
    proc = elfctl("resources", "--json", cwd=project, env={**CALM, "ELFCTL_STORE_URL": store_url})
    doc = json.loads(proc.stdout)
    return {r["subject"]: r for r in doc["resources"]["api_quota"]["readings"]} | {"policy": doc["policy"]}


def test_resources_shows_what_the_provider_said_is_left(gw_env, gateway, mint, llm_server, elfctl, store_url):
    project, _store = gw_env
    assert _api_quota(elfctl, project, store_url)["provider:openai"]["status"] == "unknown"  # no call yet
    llm_server.ratelimit("gpt-4o-mini", remaining_requests=60, limit_requests=100, remaining_tokens=9000,
                         limit_tokens=10000, reset_requests="30s", reset_tokens="30s")
    assert _served(gateway, mint("alpha")) == "gpt-4o-mini"
    got = _api_quota(elfctl, project, store_url)
    mini = got["provider:openai/gpt-4o-mini"]
    assert (mini["status"], mini["value"]) == ("healthy", 40.0), mini
    assert mini["detail"].startswith("60 of 100 requests, 9,000 of 10,000 tokens left (requests reset in "), mini
    assert "provider:openai" not in got  # the provider's one model stated: no "unknown" row beside it


def test_a_nearly_spent_model_hands_over_to_the_next_and_back(gw_env, start_gateway, mint, llm_server, elfctl,
                                                             store_url):
    from elfctl.services.actions import trail

    project, store = gw_env
    first, second = start_gateway(), start_gateway()  # two gateways on one store
    key = mint("alpha")
    # 20 s: the calls and `resources` below must see the window before it refills, on a loaded machine too
    llm_server.ratelimit("gpt-4o-mini", remaining_requests=2, limit_requests=100, reset_requests="20s")
    assert _served(first, key) == "gpt-4o-mini"  # its answer says 2 of 100 requests are left
    assert _served(first, key) == "openai/gpt-4o"
    assert _served(second, key) == "openai/gpt-4o"  # the other gateway read it from the store
    got = _api_quota(elfctl, project, store_url)
    mini = got["provider:openai/gpt-4o-mini"]
    assert (mini["status"], mini["value"]) == ("critical", 98.0), mini
    steps = [(s["strategy"], s["result"]) for s in got["policy"] if s["type"] == "api_quota"]
    assert steps == [("retry, switch_provider, degrade_service, queue_request", "call path")], steps
    acted = [(a.resource, a.strategy, a.target, a.result, a.actor) for a in trail.recent(store, team="alpha")]
    assert acted == [("api_quota", "degrade_service", "gpt-4o-mini -> openai/gpt-4o", "ok", "gateway")] * 2, acted
    assert "gpt-4o-mini rate limit 98% used: 2 of 100 requests left" in trail.recent(store, team="alpha")[0].trigger

    llm_server.ratelimit("gpt-4o-mini", remaining_requests=90, limit_requests=100, reset_requests="10s")
    deadline = time.monotonic() + 60  # the requests window refills 20 s after the last answer that stated it
    while _served(first, key) != "gpt-4o-mini":
        assert time.monotonic() < deadline, "gpt-4o-mini never served again after its window's reset"
        time.sleep(0.2)
    restored = [a for a in trail.recent(store, team="alpha") if a.result == "restored"]
    assert [(a.strategy, a.target) for a in restored] == [("degrade_service", "openai/gpt-4o -> gpt-4o-mini")]
    assert _served(first, key) == "gpt-4o-mini"  # 90 of 100 left now: it stays
    assert _api_quota(elfctl, project, store_url)["provider:openai/gpt-4o-mini"]["value"] == 10.0


def test_hostile_headers_and_an_old_store_never_fail_a_call(gw_env, gateway, mint, llm_server, elfctl, store_url):
    project, store = gw_env
    llm_server.ratelimit("gpt-4o-mini", remaining_requests="lots", limit_requests="1e999",
                         reset_requests="tomorrow")
    assert _served(gateway, mint("alpha")) == "gpt-4o-mini"
    assert store.query("SELECT * FROM provider_limits") == []  # nothing usable: nothing kept
    assert _api_quota(elfctl, project, store_url)["provider:openai"]["status"] == "unknown"

    store.execute("DROP TABLE provider_limits")  # a store migrated before 0105
    llm_server.ratelimit("gpt-4o-mini", remaining_requests=1, limit_requests=100, reset_requests="30s")
    deadline = time.monotonic() + 2.5  # past the 1 s between tries: said once, not once a try
    while time.monotonic() < deadline:
        assert _served(gateway, mint("alpha")) in ("gpt-4o-mini", "openai/gpt-4o")
    log = gateway.log.read_text()
    assert log.count("provider rate limit of openai/gpt-4o-mini not recorded") == 1, log[-2000:]
    assert log.count("provider rate limits not read") == 1, log[-2000:]
