"""The five retry policies: attempts, waits, deadline, what each retries, Retry-After, overrides.
Fake clocks for the arithmetic; one real-time run per policy against real failures (database: see
test_database_faults.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from elfctl import resilience
from elfctl.resilience import POLICIES, RetryPolicy, retry
from elfctl.resilience.retrying import MIN_ATTEMPT_S


class Refused(ConnectionRefusedError):
    pass


class Status(Exception):
    def __init__(self, status, retry_after=None):
        super().__init__(f"HTTP {status}")
        self.status_code = status
        self.headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}


@pytest.fixture(autouse=True)
def _fresh_config(project):
    resilience.reset()
    yield
    resilience.reset()


def failing(clock, exc_factory, succeed_on=None):
    starts = []

    def fn():
        starts.append(clock())
        if succeed_on is not None and len(starts) >= succeed_on:
            return "ok"
        raise exc_factory()

    return fn, starts


@pytest.mark.parametrize("name", list(POLICIES))
def test_each_policy_bounds_attempts_waits_and_deadline(name, clock):
    p = POLICIES[name]
    from elfctl.errors import Unreachable

    exc = Unreachable if name == "database" else Refused
    fn, starts = failing(clock, lambda: exc("down"))
    wrapped = retry(name, clock=clock, sleep=clock.sleep)(fn)
    t0 = clock()
    with pytest.raises(exc):
        wrapped()
    assert 1 <= len(starts) <= p.attempts
    assert all(s - t0 <= p.max_time_s - MIN_ATTEMPT_S for s in starts), "an attempt started after the deadline"
    assert clock() - t0 <= p.max_time_s
    for w in clock.sleeps:
        assert 0 <= w <= p.cap_s
    if p.fixed:
        assert clock.sleeps == [p.base_s] * (p.attempts - 1)


def test_standard_waits_grow_exponentially_with_full_jitter(clock):
    import random

    random.seed(7)
    caps = []
    for _ in range(200):
        c = type(clock)()
        fn, _ = failing(c, lambda: Refused())
        with pytest.raises(Refused):
            retry("standard", clock=c, sleep=c.sleep, max_time_s=10_000)(fn)()
        caps.append(c.sleeps)
    assert all(len(s) == 4 for s in caps)  # 5 attempts
    for i, bound in enumerate((1, 2, 4, 8)):
        waits = [s[i] for s in caps]
        assert max(waits) <= bound and min(waits) >= 0
        assert max(waits) > bound * 0.8 and min(waits) < bound * 0.2  # full jitter spans 0..bound


def test_deadline_cuts_attempts_short(clock):
    fn, starts = failing(clock, lambda: Refused())
    with pytest.raises(Refused):
        retry("aggressive", clock=clock, sleep=clock.sleep, base_s=20, cap_s=20)(fn)()
    # 300 s deadline, fixed-ish 20 s waits (jittered): far fewer than 10 attempts would be needed, but no
    # attempt starts within MIN_ATTEMPT_S of the deadline
    assert starts[-1] - starts[0] <= 300 - MIN_ATTEMPT_S


def test_retry_after_replaces_the_wait_when_it_fits(clock):
    calls = []

    def fn():
        calls.append(clock())
        if len(calls) == 1:
            raise Status(429, retry_after=3)
        return "ok"

    assert retry("standard", clock=clock, sleep=clock.sleep)(fn)() == "ok"
    assert clock.sleeps == [3.0]


def test_retry_after_past_the_deadline_ends_the_run_at_once(clock):
    fn, starts = failing(clock, lambda: Status(503, retry_after=60))
    with pytest.raises(Status):
        retry("quick", clock=clock, sleep=clock.sleep)(fn)()
    assert len(starts) == 1 and clock.sleeps == []  # quick's deadline is 5 s: no 60 s wait, no 2nd attempt


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_never_retried(status, clock):
    fn, starts = failing(clock, lambda: Status(status))
    with pytest.raises(Status):
        retry("aggressive", clock=clock, sleep=clock.sleep)(fn)()
    assert len(starts) == 1


def test_network_policy_retries_connections_not_server_errors(clock):
    fn, starts = failing(clock, lambda: Status(503))
    with pytest.raises(Status):
        retry("network", clock=clock, sleep=clock.sleep)(fn)()
    assert len(starts) == 1
    fn, starts = failing(clock, lambda: TimeoutError("slow"), succeed_on=3)
    assert retry("network", clock=clock, sleep=clock.sleep)(fn)() == "ok" and len(starts) == 3


def test_database_policy_retries_store_errors_not_http(clock):
    import psycopg

    fn, starts = failing(clock, lambda: psycopg.errors.SerializationFailure("x"), succeed_on=2)
    assert retry("database", clock=clock, sleep=clock.sleep)(fn)() == "ok" and len(starts) == 2
    fn, starts = failing(clock, lambda: Status(503))
    with pytest.raises(Status):
        retry("database", clock=clock, sleep=clock.sleep)(fn)()
    assert len(starts) == 1


def test_async_functions_alike(clock):
    calls = []

    @retry("quick", clock=clock, asleep=clock.asleep)
    async def fn(x):
        calls.append(clock())
        if len(calls) < 3:
            raise Refused()
        return x * 2

    assert asyncio.run(fn(21)) == 42
    assert clock.sleeps == [0.5, 0.5]


def test_per_call_override_and_custom_policy(clock):
    fn, starts = failing(clock, lambda: Refused())
    with pytest.raises(Refused):
        retry("quick", attempts=6, clock=clock, sleep=clock.sleep)(fn)()
    assert len(starts) == 6
    mine = RetryPolicy("mine", attempts=2, base_s=0.1, cap_s=0.1, max_time_s=1, retry_on=lambda e: True, fixed=True)
    fn, starts = failing(clock, lambda: ValueError("anything"))
    with pytest.raises(ValueError):
        retry(mine, clock=clock, sleep=clock.sleep)(fn)()
    assert len(starts) == 2


def test_elfctl_toml_overrides_a_named_policy(project, clock):
    with open(project / "elfctl.toml", "a") as f:
        f.write("\n[retry.quick]\nattempts = 4\nbase_s = 0.25\n")
    fn, starts = failing(clock, lambda: Refused())
    with pytest.raises(Refused):
        retry("quick", clock=clock, sleep=clock.sleep)(fn)()
    assert len(starts) == 4 and clock.sleeps == [0.25] * 3


def test_bad_policy_config_is_one_clear_error(project, elfctl):
    with open(project / "elfctl.toml", "a") as f:
        f.write("\n[retry.standard]\nattempts = 0\n")
    r = elfctl("config", "show", cwd=project)
    assert r.returncode == 2, r.stderr
    assert "retry.standard.attempts" in r.stderr and "Traceback" not in r.stderr
    with open(project / "elfctl.toml", "w") as f:
        f.write("[retry.standard]\nbase_s = 40\n")  # above cap_s 30
    resilience.reset()
    from elfctl.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[retry.standard\].*base_s"):
        retry("standard")(lambda: 1)()


def test_schema_defaults_are_the_policies():
    from elfctl.config import SCHEMA

    for name, p in POLICIES.items():
        assert SCHEMA[f"retry.{name}.attempts"].default == p.attempts
        assert SCHEMA[f"retry.{name}.base_s"].default == p.base_s
        assert SCHEMA[f"retry.{name}.cap_s"].default == p.cap_s
        assert SCHEMA[f"retry.{name}.max_time_s"].default == p.max_time_s


def test_unknown_policy_name():
    from elfctl.errors import InputError

    with pytest.raises(InputError, match="'fast' is not known"):
        retry("fast")(lambda: 1)()


# --- real time, real failures ------------------------------------------------------------------


def test_real_quick_against_a_failing_server(llm_server):
    import httpx

    llm_server.fail("q-model", status=500, times=2)

    @retry("quick")
    def call():
        r = httpx.post(f"{llm_server.url}/chat/completions", json={"model": "q-model", "messages": []}, timeout=5)
        r.raise_for_status()
        return r.json()["choices"][0]["message"]["content"]

    t0 = time.monotonic()
    assert call() == "ok"
    took = time.monotonic() - t0
    assert llm_server.calls("q-model") == 3
    assert 1.0 <= took < 5.0  # two fixed 0.5 s waits, inside the 5 s deadline


def test_real_standard_honours_retry_after_from_the_openai_sdk(llm_server):
    import openai

    llm_server.rate_limit("s-model", retry_after=1, times=1)
    client = openai.OpenAI(base_url=llm_server.url, api_key="sk-test", max_retries=0)

    @retry("standard")
    def call():
        return client.chat.completions.create(model="s-model", messages=[{"role": "user", "content": "hi"}])

    t0 = time.monotonic()
    assert call().choices[0].message.content == "ok"
    assert llm_server.calls("s-model") == 2
    assert time.monotonic() - t0 >= 1.0  # the server's Retry-After, not a jittered 0..1 s


def test_real_aggressive_outlasts_a_run_of_5xx(llm_server):
    import httpx

    llm_server.fail("a-model", status=503, times=6)

    @retry("aggressive", base_s=0.02, cap_s=0.1)
    async def call():
        async with httpx.AsyncClient(timeout=5) as c:
            r = await c.post(f"{llm_server.url}/chat/completions", json={"model": "a-model", "messages": []})
            r.raise_for_status()
            return r.status_code

    assert asyncio.run(call()) == 200
    assert llm_server.calls("a-model") == 7


def test_real_network_gives_up_on_a_closed_port_and_ignores_5xx(llm_server):
    import httpx

    from tests.realservices import free_port

    port = free_port()
    tries = []

    @retry("network", base_s=0.01, cap_s=0.05)
    def closed():
        tries.append(1)
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=1)

    with pytest.raises(httpx.ConnectError):
        closed()
    assert len(tries) == 5
    llm_server.fail("n-model", status=500)

    @retry("network", base_s=0.01, cap_s=0.05)
    def answered():
        httpx.post(f"{llm_server.url}/chat/completions", json={"model": "n-model"}, timeout=5).raise_for_status()

    with pytest.raises(httpx.HTTPStatusError):
        answered()
    assert llm_server.calls("n-model") == 1


def test_real_quick_retries_a_stalled_answer_as_a_timeout(llm_server):
    import httpx

    llm_server.stall("slow-model", seconds=3, times=1)

    @retry("quick")
    def call():
        r = httpx.post(f"{llm_server.url}/chat/completions", json={"model": "slow-model", "messages": []},
                       timeout=0.5)
        r.raise_for_status()
        return r.status_code

    t0 = time.monotonic()
    assert call() == 200
    assert llm_server.calls("slow-model") == 2
    assert time.monotonic() - t0 < 3  # did not wait for the stalled answer
