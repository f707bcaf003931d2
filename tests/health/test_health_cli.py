"""`elfctl health` against real components, passing and failing for real."""

import json
import shutil
import socket
import sys
import threading
import time

import pytest

from tests import realservices
from tests.conftest import run_elfctl


def _ok_json(proc):
    data = json.loads(proc.stdout)
    assert set(data) == {"status", "checks"}
    for entries in data["checks"].values():
        for entry in entries:
            assert entry["status"] in ("pass", "warn", "fail") and "time" in entry
    return data


def test_all_pass_json_follows_ietf_shape(project):
    assert run_elfctl("db", "migrate", cwd=project).returncode == 0
    proc = run_elfctl("health", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    data = _ok_json(proc)
    assert data["status"] == "pass"
    assert {"store", "disk", "memory"} <= set(data["checks"])
    store = data["checks"]["store"][0]
    status = json.loads(run_elfctl("db", "status", "--json", cwd=project).stdout)
    assert store["observedValue"] == status["latest_version"] and store["observedUnit"] == "schema_version"


def test_component_filter_and_unknown_component(project):
    run_elfctl("db", "migrate", cwd=project)
    proc = run_elfctl("health", "--component", "disk", "--json", cwd=project)
    assert list(json.loads(proc.stdout)["checks"]) == ["disk"]
    bad = run_elfctl("health", "--component", "dsik", cwd=project)
    assert bad.returncode == 2 and "components:" in bad.stderr


def test_warning_exits_0_unless_strict(project):
    run_elfctl("db", "migrate", cwd=project)
    env = {"ELFCTL_HEALTH_DISK_WARN_FREE": "0.999"}
    proc = run_elfctl("health", "--json", cwd=project, env=env)
    data = _ok_json(proc)
    assert proc.returncode == 0 and data["status"] == "warn"
    assert data["checks"]["disk"][0]["status"] == "warn"
    assert run_elfctl("health", "--strict", cwd=project, env=env).returncode == 1
    failing = run_elfctl("health", "--json", cwd=project,
                         env={"ELFCTL_HEALTH_MEMORY_WARN_FREE": "1.0", "ELFCTL_HEALTH_MEMORY_FAIL_FREE": "0.9999"})
    assert failing.returncode == 1 and json.loads(failing.stdout)["checks"]["memory"][0]["status"] == "fail"


def test_stopped_postgres_fails_the_store_check(project):
    try:
        # Not under tmp_path: pytest's folders are private to root, and the server runs as `postgres`.
        dsn, data = realservices.start_postgres()
    except Exception as exc:  # noqa: BLE001
        from tests.conftest import unavailable

        unavailable(f"cannot start PostgreSQL: {exc}")
    env = {"ELFCTL_STORE_URL": dsn}
    assert run_elfctl("db", "migrate", cwd=project, env=env).returncode == 0
    assert run_elfctl("health", cwd=project, env=env).returncode == 0
    realservices.stop_postgres(data)
    proc = run_elfctl("health", "--json", cwd=project, env=env)
    assert proc.returncode == 1
    store = json.loads(proc.stdout)["checks"]["store"][0]
    assert store["status"] == "fail" and "unreachable" in store["output"]
    assert store["hint"]
    human = run_elfctl("health", cwd=project, env=env)
    assert human.returncode == 1 and "elfctl health: fail" in human.stdout
    shutil.rmtree(data.parent, ignore_errors=True)


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers: a hung component."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    conns = []
    stop = threading.Event()

    def accept():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(sock.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield sock.getsockname()[1]
    stop.set()
    for c in conns:
        c.close()
    sock.close()


def test_hung_component_fails_within_its_timeout(project, silent_server):
    env = {"ELFCTL_STORE_URL": f"postgresql://u@127.0.0.1:{silent_server}/db"}
    started = time.monotonic()
    # The subprocess timeout is only a guard against a hang; the behaviour is the `fail` row.
    proc = run_elfctl("health", "--timeout", "1", "--json", cwd=project, env=env, timeout=30)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["checks"]["store"][0]["output"] == "no answer within 1s"
    assert data["checks"]["disk"][0]["status"] == "pass"  # the others still answered
    # the whole run is the 1 s wait plus start-up (about 1.8 s here), far from the 30 s guard
    assert elapsed < 8, elapsed


def test_watch_without_tty_prints_one_snapshot(project):
    run_elfctl("db", "migrate", cwd=project)
    proc = run_elfctl("health", "--watch", "--interval", "0.2", cwd=project, timeout=30)
    assert proc.returncode == 0
    assert proc.stdout.count("elfctl health: pass") == 1


def test_watch_refreshes_in_a_terminal_and_ctrl_c_exits_0(project):
    from tests.terminal import Terminal, wait_for_file

    run_elfctl("db", "migrate", cwd=project)
    status_file = project / "rc"
    cmd = f"cd {project} && {sys.executable} -m elfctl health --watch --interval 0.3; echo $? > {status_file}; sleep 60"
    with Terminal(cmd) as term:
        screen = term.wait_for("memory")
        assert "elfctl health: pass" in screen and "store" in screen
        time.sleep(1)  # a few refreshes: the table is redrawn in place, not appended
        assert term.screen().count("elfctl health") == 1
        term.send_keys("C-c")
        assert wait_for_file(status_file).strip() == "0"
        assert "Traceback" not in term.screen()
