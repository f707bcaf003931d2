"""Fixtures of the MCP tests: a migrated project store, the CLI as a user runs it, and real MCP
servers (tests/mcp/servers.py, written with the `mcp` SDK) on loopback ports."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_elfctl
from tests.realservices import free_port

SERVERS = Path(__file__).with_name("servers.py")
PASS = "mcp tests passphrase"


def stdio_command(mode: str, *args: str) -> str:
    import shlex

    return shlex.join([sys.executable, str(SERVERS), mode, *args])


@pytest.fixture
def mcp_env(project, monkeypatch):
    """The project's SQLite store migrated, credentials in the encrypted file; run(*args) -> the CLI."""
    from elfctl import config
    from elfctl.bootstrap import migrations_dir, open_store
    from elfctl.services.platform import migrate

    url = f"sqlite:///{project / '.elf' / 'elf.db'}"
    env = {"ELFCTL_STORE_URL": url, "ELFCTL_MASTER_KEY": PASS, "ELFCTL_CREDS_BACKEND": "file"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    store = open_store(config.load(cwd=project), url)
    migrate.migrate(store, migrations_dir(config.load(cwd=project)))
    store.close()
    return env


@pytest.fixture
def elf(project, mcp_env):
    """elf(*args, rc=0, input=None) runs `python -m elfctl` in the project; every output is kept in
    elf.outputs for the canary checks."""
    outputs: list[str] = []

    def run(*args, rc: int | None = 0, input: str | None = None, timeout: float = 180):
        proc = run_elfctl(*args, cwd=project, env=mcp_env, input=input, timeout=timeout)
        outputs.append(proc.stdout + proc.stderr)
        if rc is not None:
            assert proc.returncode == rc, f"{args}: rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    run.outputs = outputs
    return run


class Served:
    """A servers.py MODE on a free loopback port, up when its port accepts."""

    def __init__(self, mode: str):
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, str(SERVERS), mode, str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{mode} server exited {self.proc.returncode}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{mode} server not up on {self.port}")
        self.url = f"http://127.0.0.1:{self.port}/mcp"


@pytest.fixture
def served():
    started: list[Served] = []

    def start(mode: str) -> Served:
        s = Served(mode)
        started.append(s)
        return s

    yield start
    for s in started:
        s.proc.kill()
        s.proc.wait(10)
