"""Provider keys from the credential store: `elfctl.llm.completion` with no OPENAI_API_KEY in the
environment reaches the local server (through real litellm) with the key `elfctl creds set` stored,
the team's own key winning over the global one; the store is read once per process."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import run_elfctl
from tests.llm.test_calls import MSG, _team

PASS = "wiring test passphrase"


def _creds_set(project, name, value, *team):
    proc = run_elfctl("creds", "set", name, *team, "--stdin", cwd=project, input=value)
    assert proc.returncode == 0, proc.stderr
    assert value not in proc.stdout + proc.stderr
    return proc


def _reads(store, team: str) -> int:
    return store.query(
        "SELECT COUNT(*) AS n FROM credential_audit WHERE name = ? AND scope = ? AND action = 'read'",
        ("OPENAI_API_KEY", team),
    )[0]["n"]


def test_provider_key_comes_from_the_store_team_key_first(llm_env, llm_server, monkeypatch, capfd):
    from elfctl import llm

    project, store = llm_env
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("ELFCTL_MASTER_KEY", PASS)
    monkeypatch.setenv("ELFCTL_CREDS_BACKEND", "file")
    global_key, alpha_key = f"sk-global-{uuid.uuid4().hex}", f"sk-alpha-{uuid.uuid4().hex}"
    _creds_set(project, "OPENAI_API_KEY", global_key)
    _creds_set(project, "OPENAI_API_KEY", alpha_key, "--team", "alpha")
    _team(project, "alpha", model="openai/gpt-4o", fallbacks=())
    _team(project, "beta", model="openai/gpt-4o-mini", fallbacks=())

    for _ in range(2):
        llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    llm.completion(team="beta", messages=MSG, api_base=llm_server.url, max_tokens=5)
    assert llm_server.auth == [f"Bearer {alpha_key}"] * 2 + [f"Bearer {global_key}"]
    # Once per process per (key, team): one audited read of the team's key for two calls.
    assert _reads(store, "alpha") == 1 and _reads(store, "") == 1

    # The environment, when it has a key, wins (what litellm itself would read).
    env_key = f"sk-env-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", env_key)
    llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    assert llm_server.auth[-1] == f"Bearer {env_key}"

    out = capfd.readouterr()
    for key in (global_key, alpha_key):
        assert key not in out.out + out.err
        for table in ("credentials", "credential_audit", "api_usage"):
            assert key not in repr(store.query(f"SELECT * FROM {table}"))


def test_an_explicit_api_key_wins_and_the_store_is_not_read(llm_env, llm_server, monkeypatch):
    from elfctl import llm

    project, store = llm_env
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("ELFCTL_MASTER_KEY", PASS)
    monkeypatch.setenv("ELFCTL_CREDS_BACKEND", "file")
    _creds_set(project, "OPENAI_API_KEY", f"sk-global-{uuid.uuid4().hex}")
    _team(project, "alpha", model="openai/gpt-4o", fallbacks=())
    llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5, api_key="sk-given")
    assert llm_server.auth == ["Bearer sk-given"]
    assert _reads(store, "") == 0


def test_a_store_without_the_key_needs_no_passphrase(llm_env, llm_server, monkeypatch):
    """required=False: nothing stored under the name means the backend is never opened (no
    passphrase asked, no audit entry) and the call goes on with what litellm finds itself."""
    from elfctl import llm

    project, store = llm_env
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("ELFCTL_MASTER_KEY", raising=False)
    monkeypatch.setenv("ELFCTL_CREDS_BACKEND", "file")
    _team(project, "alpha", model="openai/gpt-4o", fallbacks=())
    from elfctl.adapters.litellm_client import LLMError

    # litellm itself refuses an OpenAI call with no key; what matters is that elfctl neither asked
    # for the credential file's passphrase (that would be an InputError) nor audited a read.
    with pytest.raises(LLMError):
        llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    assert store.query("SELECT COUNT(*) AS n FROM credential_audit")[0]["n"] == 0
