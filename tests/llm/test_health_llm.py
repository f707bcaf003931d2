"""`elfctl health` components `budgets` and `llm:<provider>` for real: the store on both dialects,
calls through real litellm against the local server (tests/llm_server.py), the CLI in a subprocess.

A project with teams also gets the docker/registry components; the exit-code assertions select the
components under test with --component so they do not depend on the shared Docker setup."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from tests.conftest import run_elfctl
from tests.llm.test_calls import MSG, _team


def health(*components, env=None, deep=False, table=True):
    """(exit code, JSON checks, the human table) of `elfctl health -c ...` in a subprocess."""
    args = ["health", "--json"] + [a for c in components for a in ("-c", c)] + (["--deep"] if deep else [])
    proc = run_elfctl(*args, env=env)
    data = json.loads(proc.stdout)
    if not table:
        return proc.returncode, data["checks"], None
    human = run_elfctl(*args[:1], *args[2:], env=env)  # the same without --json: the table
    assert human.returncode == proc.returncode
    return proc.returncode, data["checks"], human.stdout


def spend(store, team: str, usd: float) -> None:
    from elfctl.domain.clock import iso
    from elfctl.domain.usage import UsageRow
    from elfctl.services.cost import ledger

    ledger.record(store, [UsageRow(uuid.uuid4().hex, iso(dt.datetime.now(dt.UTC)), team, "openai/gpt-4o",
                                   "openai/gpt-4o", "openai", cost_nanousd=int(usd * 1e9))])


def test_budgets_soft_limit_warns_hard_limit_fails(llm_env):
    project, store = llm_env
    _team(project, "alpha")
    _team(project, "beta", budget={"daily_usd": 2})  # team.yaml budget, untouched
    assert run_elfctl("cost", "budget", "set", "alpha", "--daily", "1", "--soft", "0.8").returncode == 0

    spend(store, "alpha", 0.5)
    code, checks, table = health("budgets")
    b = checks["budgets"][0]
    assert code == 0 and b["status"] == "pass" and b["observedValue"] == 2, b
    assert "budgets" in table and "pass" in table

    spend(store, "alpha", 0.35)  # 85% of $1: past the soft limit
    code, checks, table = health("budgets")
    b = checks["budgets"][0]
    assert code == 0 and b["status"] == "warn", b
    assert "alpha: $0.85 of $1.00 daily (85%" in b["output"] and "beta" not in b["output"]
    assert "warn" in table and "alpha" in table
    assert run_elfctl("health", "-c", "budgets", "--strict").returncode == 1

    spend(store, "alpha", 0.2)  # $1.05 of $1: past the limit
    code, checks, table = health("budgets")
    b = checks["budgets"][0]
    assert code == 1 and b["status"] == "fail" and b["observedValue"] == 1, b
    assert "alpha: $1.05 of $1.00 daily" in b["output"] and "cost budget set" in b["hint"]
    assert "elfctl health: fail" in table


def test_provider_key_checked_by_name_env_or_credential_store(llm_env, monkeypatch):
    project, _store = llm_env
    _team(project, "alpha", model="openai/gpt-4o-mini", fallbacks=())
    value = "sk-canary-" + uuid.uuid4().hex
    monkeypatch.setenv("OPENAI_API_KEY", value)
    code, checks, table = health("llm:openai")
    assert code == 0 and checks["llm:openai"][0]["status"] == "pass"
    assert "OPENAI_API_KEY in environment" in checks["llm:openai"][0]["output"]

    monkeypatch.delenv("OPENAI_API_KEY")
    code, checks, table = health("llm:openai")
    entry = checks["llm:openai"][0]
    # A missing key warns (exit 0) so a fresh `make up` succeeds; `--strict` turns it into exit 1.
    assert code == 0 and entry["status"] == "warn" and "OPENAI_API_KEY is not set" in entry["output"]
    assert "creds set OPENAI_API_KEY" in entry["hint"] and "llm:openai" in table and "warn" in table
    assert run_elfctl("health", "-c", "llm:openai", "--strict").returncode == 1

    env = {"ELFCTL_CREDS_BACKEND": "file", "ELFCTL_MASTER_KEY": "pass-" + uuid.uuid4().hex}
    proc = run_elfctl("creds", "set", "OPENAI_API_KEY", "--stdin", input=value + "\n", env=env)
    assert proc.returncode == 0, proc.stderr
    code, checks, table = health("llm:openai", env=env)
    entry = checks["llm:openai"][0]
    assert code == 0 and entry["status"] == "pass", entry
    assert "OPENAI_API_KEY in credential store (global)" in entry["output"]
    assert value not in json.dumps(checks) and value not in table


def test_circuit_opened_in_another_process_shows(llm_env, llm_server, monkeypatch):
    from elfctl import llm

    project, store = llm_env
    monkeypatch.setenv("ELFCTL_LLM_BREAKER_RESET_S", "120")  # stays open while we look
    _team(project, "alpha")  # openai/gpt-4o, falling back to openai/gpt-4o-mini
    llm_server.fail("gpt-4o", status=503)
    for _ in range(2):  # 2 calls x 2 attempts >= breaker_fail_max 3: this process opens the circuit
        llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    code, checks, table = health("llm:openai", "llm")
    entry = checks["llm:openai"][0]
    assert code == 1 and entry["status"] == "fail" and entry["observedValue"] == 1, entry
    assert "circuit openai/gpt-4o open since" in entry["output"] and "fall back" in entry["hint"]
    assert checks["llm"][0]["status"] == "pass"  # reported once, by the provider's component
    assert "circuit openai/gpt-4o" in table


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # the call does not touch the store
def test_deep_makes_one_cheap_real_call(llm_env, llm_server, monkeypatch):
    project, _store = llm_env
    _team(project, "alpha", model="openai/gpt-4o-mini", fallbacks=())
    monkeypatch.setenv("OPENAI_API_BASE", llm_server.url)  # where litellm sends openai/* calls

    code, checks, _ = health("llm:openai", table=False)  # without --deep: no call at all
    assert code == 0 and llm_server.calls() == 0

    code, checks, _ = health("llm:openai", deep=True, table=False)
    entry = checks["llm:openai"][0]
    assert code == 0 and entry["status"] == "pass" and "openai/gpt-4o-mini answered in" in entry["output"]
    assert llm_server.requests[-1]["max_tokens"] == 1 and llm_server.calls("gpt-4o-mini") == 1

    llm_server.fail("gpt-4o-mini", status=500)
    code, checks, table = health("llm:openai", deep=True)
    entry = checks["llm:openai"][0]
    assert code == 1 and entry["status"] == "fail" and "500" in entry["output"], entry
    assert "llm:openai" in table and "elfctl health: fail" in table
