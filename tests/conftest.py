"""Shared fixtures: projects, the CLI runner, and the real PostgreSQL server.

A fixture that needs a real service and cannot start it fails, on a laptop as in CI; with
ELFCTL_TEST_ALLOW_SKIP=1 (ignored under CI=true) it skips instead, saying why. Services are started
once by `make test` (tests/realservices.py) and found through ELFCTL_TEST_* variables; without them,
this file starts PostgreSQL itself. Whatever did not run is named at the end of the run's summary.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests import realservices

REPO = Path(__file__).resolve().parents[1]


def unavailable(reason: str):
    if not realservices.may_skip():
        where = "in CI" if realservices.in_ci() else f"(set {realservices.ALLOW_SKIP}=1 to skip such tests)"
        pytest.fail(f"required service unavailable {where}: {reason}", pytrace=False)
    pytest.skip(f"service unavailable ({realservices.ALLOW_SKIP}=1): {reason}")


def pytest_terminal_summary(terminalreporter):
    """Say plainly what did not run: the real-cluster tests (no cluster unless
    ELFCTL_TEST_KUBECONFIG is set) and anything skipped under ELFCTL_TEST_ALLOW_SKIP."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if getattr(r, "when", "") in ("setup", "call")]
    if not skipped:
        return
    cluster = [r for r in skipped if "kubernetes_real" in getattr(r, "keywords", {})]
    others = [r for r in skipped if r not in cluster]
    terminalreporter.section("tests that did not run", sep="-", yellow=True, bold=True)
    if cluster:
        terminalreporter.line(f"NOT RUN: {len(cluster)} real-cluster test(s) (marker kubernetes_real): "
                              "set ELFCTL_TEST_KUBECONFIG to a cluster's kubeconfig to run them", yellow=True)
    for r in others:
        reason = r.longrepr[2] if isinstance(r.longrepr, tuple) else str(r.longrepr)
        terminalreporter.line(f"NOT RUN: {r.nodeid}: {reason.removeprefix('Skipped: ')}", yellow=True)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in list(os.environ):
        if var.startswith("ELFCTL_") and not var.startswith("ELFCTL_TEST_"):
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture(scope="session")
def pg_dsn():
    dsn = os.environ.get("ELFCTL_TEST_PG_DSN")
    if dsn:
        yield dsn
        return
    try:
        dsn, data = realservices.start_postgres()
    except Exception as exc:  # noqa: BLE001
        unavailable(f"cannot start PostgreSQL: {exc}")
    yield dsn
    realservices.stop_postgres(data)


@pytest.fixture
def pg_url(pg_dsn):
    """A fresh, empty database on the test server; dropped afterwards."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    try:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {pg_dsn} unreachable: {exc}")
    url = pg_dsn.rsplit("/", 1)[0] + "/" + name
    yield url
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An initialised elfctl project folder, as the current directory."""
    from elfctl.services.platform.project import init

    init(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, project):
    """The store URL for both dialects: every store test runs on SQLite and real Postgres."""
    if request.param == "sqlite":
        return f"sqlite:///{project / '.elf' / 'elf.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def open_store(project):
    """Open a store by URL with the project's config; closed at teardown."""
    from elfctl import config
    from elfctl.bootstrap import open_store as _open

    opened = []

    def opener(url: str):
        store = _open(config.load(cwd=project), url)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


@pytest.fixture
def cli():
    """Invoke the CLI in-process (Typer's CliRunner, exceptions not swallowed)."""
    from typer.testing import CliRunner

    from elfctl.cli.main import app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict | None = None):
        return runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)

    return invoke


def run_elfctl(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120,
               input: str | None = None) -> subprocess.CompletedProcess:
    """Run `python -m elfctl` in a subprocess: what a user or CI pipeline sees."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "elfctl", *args], cwd=cwd, env=full_env, input=input,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def elfctl():
    return run_elfctl


@pytest.fixture(scope="session")
def keyring_bus(tmp_path_factory):
    """The D-Bus address of a running, unlocked gnome-keyring (from `realservices up`, else started
    here for this session)."""
    bus = os.environ.get("ELFCTL_TEST_KEYRING_BUS")
    if bus:
        yield bus
        return
    folder = tmp_path_factory.mktemp("keyring")
    try:
        env = realservices.start_keyring(folder)
    except Exception as exc:  # noqa: BLE001
        unavailable(f"cannot start gnome-keyring on a private D-Bus: {exc}")
    yield env["ELFCTL_TEST_KEYRING_BUS"]
    realservices.stop_keyring(folder)


@pytest.fixture
def os_keyring(keyring_bus, monkeypatch):
    """This test sees the real OS keyring (Secret Service); `keyring` re-detects its backend."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", keyring_bus)
    import keyring.core
    from keyring.backends import SecretService

    monkeypatch.setattr(keyring.core, "_keyring_backend", SecretService.Keyring())
    return keyring_bus

# --- LLM provider (issue 4): tests/llm_server.py, an OpenAI-compatible server on 127.0.0.1 ----------
@pytest.fixture(scope="session")
def _llm_server_session():
    from tests.llm_server import LLMServer

    server = LLMServer().start()
    yield server
    server.stop()


@pytest.fixture
def llm_server(_llm_server_session):
    """The local LLM server, reset for this test; every model answers 10 prompt / 5 completion tokens
    unless told otherwise (see tests/llm_server.py). Call it via litellm with api_base=llm_server.url."""
    _llm_server_session.reset()
    _llm_server_session.answer("*", prompt=10, completion=5)
    yield _llm_server_session
    _llm_server_session.reset()


def kill_unreaped(proc: subprocess.Popen, timeout_s: float = 10) -> None:
    """SIGKILL `proc` and leave it unreaped (a zombie: os.kill(pid, 0) still finds it) until proc.wait()."""
    import time

    proc.kill()
    deadline = time.monotonic() + timeout_s
    while open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, f"pid {proc.pid} did not become a zombie"
        time.sleep(0.01)


# --- the wall clock: CI runs the suite at any hour ---------------------------------------------------
NOT_ACROSS_MIDNIGHT_S = 240  # longer than a test takes on a loaded machine (the slowest run about 2 min)


@pytest.fixture(autouse=True)
def _not_across_midnight():
    """No test straddles midnight UTC. Many write spend "now" and then check today's figures in elfctl
    (a daily budget, today's column, `llm test`'s budget left); across midnight elfctl's today is a
    new, empty day and such a test fails for the hour it ran at. In the last NOT_ACROSS_MIDNIGHT_S
    seconds of a day the test waits for the next day before its fixtures run (a guard, not a timing
    assert). Code that must be right at the boundary is tested with an injected clock instead."""
    import time

    left = 86400 - time.time() % 86400
    if left < NOT_ACROSS_MIDNIGHT_S:
        time.sleep(left + 1)
