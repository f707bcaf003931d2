"""Fixtures of the registry tests: a migrated project store on both dialects, gateway processes
(tests/gateway's GatewayProcess: the registry's routes need no LLM provider, so none answers)."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import GatewayProcess


@pytest.fixture
def reg_store(store_url, open_store, project, monkeypatch):
    """The project's store (SQLite or Postgres) migrated, and the CLI pointed at it."""
    from elfctl import config
    from elfctl.bootstrap import migrations_dir
    from elfctl.services.platform import migrate

    monkeypatch.setenv("ELFCTL_STORE_URL", store_url)
    store = open_store(store_url)
    migrate.migrate(store, migrations_dir(config.load(cwd=project)))
    return store


@pytest.fixture
def gateways(project):
    """start(store_url) -> a running `elfctl gateway serve` on a free port; stopped at teardown."""
    started: list[GatewayProcess] = []

    def start(store_url: str) -> GatewayProcess:
        g = GatewayProcess(project, store_url, "http://127.0.0.1:9/v1").start()
        started.append(g)
        return g

    yield start
    for g in started:
        g.stop()
