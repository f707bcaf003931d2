"""Fixtures of the registry tests: a migrated project store on both dialects, gateway processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


class Gateway:
    def __init__(self, project, store_url: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ELFCTL_STORE_URL": store_url}
        self.proc = subprocess.Popen([sys.executable, "-m", "elfctl", "-q", "gateway", "serve", "--port", str(self.port)],
                                     cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    out, err = self.proc.communicate(timeout=5) if self.proc.poll() is not None else (b"", b"")
                    self.stop()
                    raise RuntimeError(f"gateway did not start: {err.decode()[-2000:]}")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def gateways(project):
    """start(store_url) -> a running `elfctl gateway serve` on a free port; stopped at teardown."""
    started: list[Gateway] = []

    def start(store_url: str) -> Gateway:
        g = Gateway(project, store_url)
        started.append(g)
        return g

    yield start
    for g in started:
        g.stop()
