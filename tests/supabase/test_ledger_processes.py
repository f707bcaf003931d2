"""The ledger's proof of tests/llm/test_concurrency.py through a Supabase-shaped database: 8 processes
calling elfctl.llm against one small budget, each session running as service_role (the role Supabase's
REST API runs the service key's requests as), so every reservation, record and settlement goes through
the database functions with exactly the grants the migration gives."""

from __future__ import annotations

import os

import pytest

from tests.llm.conftest import FAST
from tests.llm.test_concurrency import eight_processes_within_the_bound
from tests.supabase.test_store_functions import as_role


@pytest.fixture
def service_llm_env(supa_pg_url, project, monkeypatch, llm_server):
    from elfctl import config, llm
    from elfctl.bootstrap import open_store

    with open(project / "elfctl.toml", "a") as f:
        f.write(FAST)
    monkeypatch.setenv("ELFCTL_STORE_URL", as_role(supa_pg_url, "service_role"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-" + os.urandom(4).hex())
    store = open_store(config.load(cwd=project))
    assert store.query("SELECT current_user AS u")[0]["u"] == "service_role"
    llm.reset()
    yield project, store
    llm.reset()
    store.close()


def test_eight_processes_as_service_role_stay_within_the_bound(service_llm_env, llm_server):
    eight_processes_within_the_bound(*service_llm_env, llm_server)
