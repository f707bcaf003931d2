"""What is retried, recognised on the real exception classes of httpx, requests, openai, urllib and
psycopg (built as those libraries build them), without the library importing any of them."""

from __future__ import annotations

import datetime as dt
import email.utils
import subprocess
import sys

import pytest

from elfctl.resilience import classify


def _httpx_error(status: int, headers: dict | None = None):
    import httpx

    req = httpx.Request("POST", "http://127.0.0.1/v1/x")
    resp = httpx.Response(status, headers=headers or {}, request=req)
    return httpx.HTTPStatusError(f"{status}", request=req, response=resp)


def _openai_error(status: int, headers: dict | None = None):
    import httpx
    import openai

    req = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    resp = httpx.Response(status, headers=headers or {}, request=req)
    cls = {429: openai.RateLimitError, 400: openai.BadRequestError, 401: openai.AuthenticationError,
           404: openai.NotFoundError, 422: openai.UnprocessableEntityError}.get(status, openai.InternalServerError)
    return cls(f"status {status}", response=resp, body=None)


def _requests_error(status: int):
    import requests

    resp = requests.Response()
    resp.status_code = status
    return requests.HTTPError(f"{status}", response=resp)


def _urllib_error(status: int):
    import urllib.error
    from email.message import Message

    return urllib.error.HTTPError("http://x", status, "x", Message(), None)


MAKERS = [_httpx_error, _openai_error, _requests_error, _urllib_error]


@pytest.mark.parametrize("make", MAKERS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("status,retried", [(408, True), (429, True), (500, True), (502, True), (503, True),
                                            (400, False), (401, False), (403, False), (404, False), (422, False)])
def test_http_status_decides(make, status, retried):
    exc = make(status)
    assert classify.status_of(exc) == status
    assert classify.is_retriable(exc) is retried
    assert classify.is_network(exc) is False  # an answer, not a network failure


def test_connection_errors_and_timeouts_of_each_library():
    import httpx
    import openai
    import requests

    req = httpx.Request("GET", "http://127.0.0.1:1/")
    for exc in (httpx.ConnectError("refused", request=req), httpx.ReadTimeout("slow", request=req),
                requests.ConnectionError("refused"), requests.Timeout("slow"),
                openai.APIConnectionError(request=req), openai.APITimeoutError(request=req),
                ConnectionRefusedError(), TimeoutError()):
        assert classify.is_retriable(exc), exc
        assert classify.is_network(exc), exc
    assert not classify.is_retriable(ValueError("bad"))
    assert not classify.is_retriable(KeyError("x"))


def test_transient_store_errors_by_sqlstate_and_elfctl_errors():
    import psycopg

    from elfctl.errors import Conflict, InputError, StoreLocked, Unreachable

    for exc in (psycopg.errors.SerializationFailure("x"), psycopg.errors.DeadlockDetected("x"),
                psycopg.OperationalError("connection refused"), Unreachable("db down"), Conflict("c"),
                StoreLocked("busy")):
        assert classify.is_transient_db(exc), exc
    assert not classify.is_transient_db(psycopg.errors.UniqueViolation("dup"))
    assert not classify.is_transient_db(InputError("bad"))
    assert not classify.is_retriable(psycopg.errors.UniqueViolation("dup"))


def test_retry_after_seconds_and_http_date():
    assert classify.retry_after(_httpx_error(429, {"Retry-After": "7"})) == 7.0
    assert classify.retry_after(_openai_error(429, {"retry-after": "2.5"})) == 2.5
    fixed = dt.datetime(2030, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    later = email.utils.format_datetime(fixed + dt.timedelta(seconds=42), usegmt=True)
    assert classify.retry_after(_httpx_error(503, {"Retry-After": later}), now=lambda: fixed) == 42.0
    past = email.utils.format_datetime(fixed - dt.timedelta(seconds=42), usegmt=True)
    assert classify.retry_after(_httpx_error(503, {"Retry-After": past}), now=lambda: fixed) == 0.0
    # hostile or absent values: no hint, the policy's own delay is used
    for bad in ("soon", "-5", "nan", "inf", ""):
        assert classify.retry_after(_httpx_error(429, {"Retry-After": bad})) is None, bad
    assert classify.retry_after(_httpx_error(429)) is None


def test_classify_imports_no_sdk():
    code = ("import sys, elfctl.resilience; bad = [m for m in ('httpx', 'requests', 'openai', 'psycopg', "
            "'litellm', 'urllib.request') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
