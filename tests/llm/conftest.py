"""LLM fixtures: a migrated project store per dialect (`llm_server` lives in tests/conftest.py).

`llm_env(store_url)` gives a project whose store is migrated, with fast retry settings, and the
api_base / key to call the server through real litellm.
"""

from __future__ import annotations

import os

import pytest

FAST = """
[llm]
retry_max_time_s = 3.0
retry_max_tries = 2
timeout_s = 2.0
breaker_fail_max = 3
breaker_reset_s = 1.0
"""


@pytest.fixture
def llm_env(store_url, project, monkeypatch, llm_server):
    """(project, store) with the schema applied, elfctl.llm pointed at this project."""
    from elfctl import config, llm
    from elfctl.bootstrap import migrations_dir, open_store
    from elfctl.services.platform import migrate

    with open(project / "elfctl.toml", "a") as f:
        f.write(FAST)
    monkeypatch.setenv("ELFCTL_STORE_URL", store_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-" + os.urandom(4).hex())
    cfg = config.load(cwd=project)
    store = open_store(cfg)
    migrate.migrate(store, migrations_dir(cfg))
    llm.reset()
    yield project, store
    llm.reset()
    store.close()
