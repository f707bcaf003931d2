"""Resilience fixtures: a migrated project store (SQLite and Postgres) made the library's store."""

from __future__ import annotations

import pytest


class FakeClock:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self):
        self.t = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def clock():
    return FakeClock()


def _migrated(project, url):
    from elfctl import config
    from elfctl.bootstrap import migrations_dir, open_store
    from elfctl.services.platform import migrate

    cfg = config.load(cwd=project)
    store = open_store(cfg, url)
    migrate.migrate(store, migrations_dir(cfg))
    return cfg, store


def _library_store(project, url, monkeypatch):
    """The migrated store at `url` made the library's store (ELFCTL_STORE_URL too, so subprocesses
    and the CLI in this folder see the same store); closed afterwards."""
    from elfctl import resilience

    monkeypatch.setenv("ELFCTL_STORE_URL", url)
    cfg, store = _migrated(project, url)
    resilience.reset()
    resilience.use_store(store, cfg)
    yield store
    resilience.reset()
    store.close()


@pytest.fixture
def res_store(store_url, project, monkeypatch):
    """The project's store on both dialects."""
    yield from _library_store(project, store_url, monkeypatch)


@pytest.fixture
def sqlite_store(project, monkeypatch):
    """SQLite only (tests about processes, not dialects)."""
    yield from _library_store(project, f"sqlite:///{project / '.elf' / 'elf.db'}", monkeypatch)
