"""Hostile and broken requests: each gets its status and an OpenAI-shaped error, nothing reaches the
provider, nothing is charged, and the gateway keeps serving."""

from __future__ import annotations

import datetime as dt
import json
import socket
import time

import httpx
import pytest

from tests.gateway.conftest import ledger

MSG = [{"role": "user", "content": "hello"}]


def post(gateway, key, body, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", **kw.pop("headers", {})}
    if isinstance(body, dict):
        return httpx.post(gateway.base_url + "/chat/completions", json=body, headers=headers, timeout=30, **kw)
    return httpx.post(gateway.base_url + "/chat/completions", content=body, headers=headers, timeout=30, **kw)


def error_of(r: httpx.Response) -> dict:
    err = r.json()["error"]
    assert set(err) == {"message", "type", "code", "param"}
    return err


@pytest.mark.parametrize("body, param, words", [
    (b'{"model": "gpt-4o-mini", "messages": [', None, "not valid JSON"),
    (b"[1, 2]", None, "must be a JSON object"),
    ({"messages": MSG}, "model", "must provide a model"),
    ({"model": 42, "messages": MSG}, "model", "must be a model name"),
    ({"model": "gpt-4o-mini", "messages": "hello"}, "messages", "non-empty array"),
    ({"model": "gpt-4o-mini", "messages": [{"content": "no role"}]}, "messages[0]", "string role"),
    ({"model": "gpt-4o-mini", "messages": MSG, "max_tokens": "ten"}, "max_tokens", "whole number"),
    ({"model": "gpt-4o-mini", "messages": MSG, "temperature": "hot"}, "temperature", "must be a number"),
    ({"model": "gpt-4o-mini", "messages": MSG, "stream": "yes"}, "stream", "true or false"),
    ({"model": "gpt-4o-mini", "messages": MSG, "api_base": "http://evil.example"}, "api_base", "Unrecognized"),
])
def test_malformed_requests_are_400_naming_the_argument(gw_env, gateway, mint, llm_server, body, param, words):
    _project, store = gw_env
    r = post(gateway, mint("alpha"), body)
    assert r.status_code == 400, r.text
    err = error_of(r)
    assert words in err["message"] and err["param"] == param and err["type"] == "invalid_request_error"
    assert llm_server.calls() == 0 and ledger(store) == []


def test_agent_header_is_checked(gateway, mint, llm_server):
    r = post(gateway, mint("alpha"), {"model": "gpt-4o-mini", "messages": MSG}, headers={"X-Elfctl-Agent": "a" * 500})
    assert r.status_code == 400 and error_of(r)["param"] == "X-Elfctl-Agent"
    assert llm_server.calls() == 0


def test_a_50_mb_body_is_413_and_the_gateway_serves_on(gw_env, gateway, mint, llm_server):
    _project, store = gw_env
    key = mint("alpha")
    big = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "' + b"x" * (50 << 20) + b'"}]}'
    r = post(gateway, key, big)
    assert r.status_code == 413 and error_of(r)["code"] == "request_too_large"

    def chunks():  # no Content-Length: the limit holds on what arrives
        for _ in range(50):
            yield b"x" * (1 << 20)

    try:
        r = post(gateway, key, chunks())
        assert r.status_code == 413
    except httpx.HTTPError:
        pass  # the gateway answered 413 and closed while the client was still sending: also right
    assert post(gateway, key, {"model": "gpt-4o-mini", "messages": MSG}).status_code == 200
    assert llm_server.calls() == 1


def test_a_body_without_a_key_is_refused_before_it_is_read(gateway):
    r = post(gateway, "elf_00000000_" + "0" * 48, b"x" * (50 << 20))
    assert r.status_code == 401 and error_of(r)["code"] == "invalid_api_key"


def _closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing the connection, or None if it is still open after `seconds`."""
    sock.settimeout(seconds)
    got = b""
    try:
        while True:
            part = sock.recv(65536)
            if not part:
                return got
            got += part
    except TimeoutError:
        return None


@pytest.mark.parametrize("sent", [b"", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthor"],
                         ids=["idle", "half-sent-headers"])
def test_idle_or_half_sent_connection_is_closed(gateway, sent):
    with socket.create_connection(("127.0.0.1", gateway.port)) as s:
        s.sendall(sent)
        t0 = time.monotonic()
        got = _closed_within(s, 10)  # gateway.idle_timeout_s is 1 s in these tests
    assert got is not None, "the gateway kept a silent connection open"
    assert time.monotonic() - t0 < 5


def test_half_sent_body_gets_408_and_is_closed(gw_env, gateway, mint, llm_server):
    _project, store = gw_env
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {mint('alpha')}\r\n"
            "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", gateway.port)) as s:
        s.sendall(head + b'{"model": "gpt-4o-mini", ')
        got = _closed_within(s, 10)
    assert got is not None and got.startswith(b"HTTP/1.1 408"), got
    assert b'"request_timeout"' in got
    assert llm_server.calls() == 0 and ledger(store) == []


def test_unknown_path_and_wrong_method(gateway, mint):
    key = mint("alpha")
    r = httpx.get(gateway.url + "/v1/nothing", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 404 and error_of(r)["code"] == "unknown_url"
    r = httpx.get(gateway.base_url + "/chat/completions", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 405


def test_health_is_public_ietf_json_and_names_no_team(gw_env, gateway, mint):
    from elfctl.domain.usage import UsageRow
    from elfctl.services.cost import ledger as ledger_mod
    from tests.gateway.conftest import write_team

    project, store = gw_env
    r = httpx.get(gateway.url + "/health")
    assert r.status_code == 200 and r.headers["content-type"] == "application/health+json"
    assert r.json()["status"] == "pass" and set(r.json()["checks"]) == {"store", "llm", "budgets"}
    write_team(project, "poor", "gpt-4o", budget={"daily_usd": "0.000001"})
    mint("poor")
    now = dt.datetime.now(dt.UTC)
    ledger_mod.record(store, [UsageRow("spent-1", now.isoformat(timespec="milliseconds"), "poor", "gpt-4o", "gpt-4o",
                                      cost_nanousd=5000)])
    data = httpx.get(gateway.url + "/health").json()
    assert data["status"] == "warn" and data["checks"]["budgets"][0]["observedValue"] == 1
    assert "poor" not in json.dumps(data)
