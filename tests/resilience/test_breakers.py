"""Shared circuit breakers: state in the store, so separate processes count together, see one open
circuit, and a new process resets nothing; `elfctl breakers open/close` hold and release it by hand."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest

from elfctl.resilience import CircuitOpen, circuit_breaker

TEAM_CODE = '''
import json, sys
from elfctl.resilience import CircuitOpen, circuit_breaker

calls = []

@circuit_breaker("pay-api", fail_max=3, reset_timeout=float(sys.argv[2]) if len(sys.argv) > 2 else 60)
def charge(fail):
    calls.append(1)
    if fail:
        raise ConnectionRefusedError("payments down")
    return "charged"

try:
    print(json.dumps({"result": charge(sys.argv[1] == "fail"), "calls": len(calls)}))
except CircuitOpen as e:
    print(json.dumps({"open": True, "retry_after": e.retry_after, "message": e.message, "calls": len(calls)}))
except ConnectionRefusedError:
    print(json.dumps({"error": True, "calls": len(calls)}))
'''


@pytest.fixture
def team_process(project):
    (project / "teamcode.py").write_text(TEAM_CODE)

    def run(mode: str, reset: float | None = None) -> dict:
        args = [sys.executable, "teamcode.py", mode] + ([str(reset)] if reset is not None else [])
        r = subprocess.run(args, cwd=project, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    return run


def test_failures_of_separate_processes_add_up_and_all_see_the_open_circuit(res_store, team_process):
    assert team_process("fail") == {"error": True, "calls": 1}
    assert team_process("fail") == {"error": True, "calls": 1}  # a new process: the count is not reset
    assert team_process("fail") == {"error": True, "calls": 1}  # third failure: opens
    seen = team_process("ok")
    assert seen["open"] is True and seen["calls"] == 0  # refused without calling
    assert 55 <= seen["retry_after"] <= 60
    row = res_store.query("SELECT state, fail_counter FROM breaker_state WHERE name = 'pay-api'")[0]
    assert row["state"] == "open"
    actions = res_store.query("SELECT strategy, result, resource FROM platform_actions")
    assert actions == [{"strategy": "circuit_break", "result": "opened", "resource": "pay-api"}]


def test_opened_here_is_seen_by_another_process_then_recovers(sqlite_store, team_process):
    calls = []

    @circuit_breaker("pay-api", fail_max=2, reset_timeout=0.5)
    def charge(fail):
        calls.append(1)
        if fail:
            raise TimeoutError("slow")
        return "charged"

    for _ in range(2):
        with pytest.raises(TimeoutError):
            charge(True)
    with pytest.raises(CircuitOpen) as info:
        charge(False)
    assert len(calls) == 2 and 0 < info.value.retry_after <= 0.5
    assert team_process("ok", reset=0.5)["calls"] in (0, 1)  # open, or already past its reset: the probe
    # once the reset time passes, one call probes and closes the circuit for everyone
    end = time.monotonic() + 20
    while True:
        got = team_process("ok", reset=0.5)
        if got.get("result") == "charged":
            break
        assert time.monotonic() < end, got
    assert sqlite_store.query("SELECT state FROM breaker_state WHERE name = 'pay-api'")[0]["state"] == "closed"
    results = [r["result"] for r in sqlite_store.query("SELECT result FROM platform_actions ORDER BY ts")]
    assert results == ["opened", "closed"]


def test_client_errors_do_not_open_the_circuit(sqlite_store):
    class NotFound(Exception):
        status_code = 404

    @circuit_breaker("lookup", fail_max=2, reset_timeout=60)
    def lookup():
        raise NotFound("no such user")

    for _ in range(5):
        with pytest.raises(NotFound):
            lookup()
    assert sqlite_store.query("SELECT state, fail_counter FROM breaker_state WHERE name = 'lookup'")[0] == {
        "state": "closed", "fail_counter": 0}


def test_async_functions_share_the_same_circuit(sqlite_store):
    @circuit_breaker("async-api", fail_max=1, reset_timeout=60)
    async def call(fail):
        if fail:
            raise ConnectionResetError("reset")
        return "ok"

    async def main():
        with pytest.raises(ConnectionResetError):
            await call(True)
        with pytest.raises(CircuitOpen):
            await call(False)

    asyncio.run(main())


def test_breakers_open_holds_the_circuit_until_closed_by_hand(res_store, team_process, elfctl, project):
    import getpass

    assert team_process("ok", reset=0.01) == {"result": "charged", "calls": 1}
    r = elfctl("breakers", "open", "pay-api", "--reason", "maintenance window", "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["state"] == "open"
    # held: refused without calling, even long past its 0.01 s reset time (no probe while held)
    for _ in range(2):
        got = team_process("ok", reset=0.01)
        assert got["open"] is True and got["calls"] == 0 and got["retry_after"] is None
        assert "opened by hand" in got["message"]
    listed = json.loads(elfctl("breakers", "list", "--json", cwd=project).stdout)
    assert [(b["name"], b["state"], b["held"]) for b in listed] == [("pay-api", "open", f"user:{getpass.getuser()}")]
    r = elfctl("breakers", "close", "pay-api", cwd=project)
    assert r.returncode == 0 and "closed" in r.stdout
    assert team_process("ok", reset=0.01) == {"result": "charged", "calls": 1}
    audit = json.loads(elfctl("audit", "actions", "--json", cwd=project).stdout)
    assert [(a["strategy"], a["result"], a["actor"], a["trigger"]) for a in audit] == [
        ("circuit_break", "closed", f"user:{getpass.getuser()}", "closed by hand"),
        ("circuit_break", "opened (held until closed by hand)", f"user:{getpass.getuser()}", "maintenance window"),
    ]


def test_breakers_commands_refuse_bad_names(sqlite_store, elfctl, project):
    r = elfctl("breakers", "close", "never-used", cwd=project)
    assert r.returncode == 2 and "no circuit breaker named 'never-used'" in r.stderr
    r = elfctl("breakers", "open", "bad\x01name", "--json", cwd=project)
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["code"] == "invalid_input"
    assert "Traceback" not in r.stderr
    assert sqlite_store.query("SELECT COUNT(*) AS n FROM platform_actions")[0]["n"] == 0
