"""Gateway fixtures: the gateway as a real server process (`python -m elfctl gateway serve`) on a
migrated project store (SQLite and Postgres), tests/llm_server.py as its provider (OPENAI_BASE_URL),
and keys minted in that store. Clients are the official `openai` SDK or raw httpx / sockets.

Teams: `alpha` may call gpt-4o-mini, then openai/gpt-4o (its fallback); `beta` may call gpt-4o only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.realservices import free_port

FAST = """
[llm]
retry_max_time_s = 2.0
retry_max_tries = 2
timeout_s = 1.0
breaker_fail_max = 100
breaker_reset_s = 1.0

[gateway]
idle_timeout_s = 1.0
max_body_bytes = 1048576
"""

PROVIDER_KEY = "sk-canary-" + os.urandom(6).hex()


def write_team(project: Path, name: str, model: str, fallbacks=(), budget: dict | None = None) -> None:
    from tests.llm.test_calls import _team

    _team(project, name, model, tuple(fallbacks), budget)


class GatewayProcess:
    """One `elfctl gateway serve` process; `url` is its root, `base_url` what an SDK is given."""

    def __init__(self, project: Path, store_url: str, provider_url: str, workers: int = 1):
        self.project, self.store_url, self.provider_url, self.workers = project, store_url, provider_url, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"
        self.proc: subprocess.Popen | None = None
        self.log = project / f"gateway-{self.port}.log"

    def start(self, timeout_s: float = 60) -> GatewayProcess:
        import httpx

        env = {**os.environ, "ELFCTL_STORE_URL": self.store_url, "OPENAI_BASE_URL": self.provider_url,
               "OPENAI_API_KEY": PROVIDER_KEY}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "elfctl", "gateway", "serve", "--port", str(self.port),
             "--workers", str(self.workers)],
            cwd=self.project, env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("wb"),
            start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gateway did not answer /health within {timeout_s}s: {self.log.read_text()[-3000:]}")

    def kill9(self) -> None:
        """SIGKILL the whole process group (the supervisor and its workers)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def gw_env(store_url, project, llm_server, monkeypatch):
    """(project, store) migrated, with teams alpha and beta and the fast settings."""
    from elfctl import config
    from elfctl.bootstrap import migrations_dir, open_store
    from elfctl.services.platform import migrate

    with open(project / "elfctl.toml", "a") as f:
        f.write(FAST)
    monkeypatch.setenv("ELFCTL_STORE_URL", store_url)
    write_team(project, "alpha", "gpt-4o-mini", ("openai/gpt-4o",))
    write_team(project, "beta", "gpt-4o")
    cfg = config.load(cwd=project)
    store = open_store(cfg)
    migrate.migrate(store, migrations_dir(cfg))
    yield project, store
    store.close()


@pytest.fixture
def start_gateway(gw_env, store_url, llm_server):
    """start_gateway(workers=1) -> a running GatewayProcess, stopped at teardown."""
    project, _store = gw_env
    started = []

    def start(workers: int = 1) -> GatewayProcess:
        g = GatewayProcess(project, store_url, llm_server.url, workers).start()
        started.append(g)
        return g

    yield start
    for g in started:
        g.stop()


@pytest.fixture
def gateway(start_gateway):
    return start_gateway()


@pytest.fixture
def mint(gw_env):
    """mint(team, revision=None) -> a raw key in the test store."""
    from elfctl.services.gateway import keys

    _project, store = gw_env
    return lambda team="alpha", revision=None, expires_at=None: keys.mint(store, team, revision, expires_at)


def ledger(store, team: str | None = None) -> list[dict]:
    sql, params = "SELECT * FROM api_usage", []
    if team:
        sql, params = sql + " WHERE team = ?", [team]
    return store.query(sql + " ORDER BY id", params)


def wait_rows(store, n: int, team: str | None = None, timeout_s: float = 10) -> list[dict]:
    """The ledger once it holds at least n rows (the gateway's writer commits just after the 200)."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = ledger(store, team)
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)
