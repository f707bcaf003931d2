"""Start the real outside systems the tests use, once per `make test` run.

`python -m tests.realservices up` starts what is missing and prints `export VAR=...` lines that the
Makefile sources; conftest.py falls back to starting them itself when pytest runs alone. A service
that cannot start is an error, on a laptop as in CI, so `make test` never passes by skipping what CI
runs. ELFCTL_TEST_ALLOW_SKIP=1 opts out (outside CI only): such tests then skip, saying why, and the
run's summary lists them as not run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("ELFCTL_PG_BIN", "/usr/lib/postgresql/15/bin"))
STATE = Path(os.environ.get("ELFCTL_TEST_STATE", tempfile.gettempdir())) / "elfctl-test-services"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


ALLOW_SKIP = "ELFCTL_TEST_ALLOW_SKIP"


def may_skip() -> bool:
    """A missing service may skip its tests only when the developer asked for it, and never in CI."""
    return not in_ci() and os.environ.get(ALLOW_SKIP, "").lower() in ("1", "true", "yes")


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range (32768-60999): a port the kernel hands out
    (bind to 0) is also what it gives the suite's own outgoing connections, and one of those took a
    gateway's port between this check and the gateway's bind (CI: "address already in use")."""
    import random

    for _ in range(200):
        port = random.SystemRandom().randint(20000, 32767)  # not the seeded module state: workers differ
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32767")


def _as_postgres_user() -> list[str]:
    # initdb refuses to run as root: drop to the `postgres` system user when we are root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"]
    return []


def start_postgres(folder: Path | None = None) -> tuple[str, Path]:
    """initdb + pg_ctl in a temp folder on a free port. Returns (admin DSN, data folder)."""
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"PostgreSQL server binaries not found in {PG_BIN} (apt-get install postgresql-15)")
    folder = folder or Path(tempfile.mkdtemp(prefix="elfctl-pg-"))
    data = folder / "data"
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = free_port()
    run = _as_postgres_user()
    subprocess.run(run + [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                          "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
    opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off " \
           f"-c synchronous_commit=off -c max_connections=200"
    subprocess.run(run + [str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(folder / "log"),
                          "-w", "-t", "30", "start"], check=True, capture_output=True)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres", data


def stop_postgres(data: Path) -> None:
    subprocess.run(_as_postgres_user() + [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                   capture_output=True)


def docker_answers(timeout: float = 5) -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def ensure_dockerd(wait_s: float = 60) -> None:
    if docker_answers():
        return
    if not shutil.which("dockerd"):
        raise RuntimeError("dockerd is not installed (apt-get install docker.io)")
    log = open(STATE / "dockerd.log", "ab")
    # Networks from a pool of /24s (512 of them), not dockerd's default /16s and /20s (about 31): a full
    # run holds up to ~20 networks at once (each deploy/infra test session its own).
    subprocess.Popen(["dockerd", "--default-address-pool", "base=172.18.0.0/15,size=24"],
                     stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if docker_answers():
            return
        time.sleep(0.5)
    raise RuntimeError(f"dockerd did not answer within {wait_s:g}s (see {STATE / 'dockerd.log'})")


def prune_stale_test_objects(older_than_s: float = 2 * 3600) -> None:
    """Remove what killed earlier runs left on dockerd: containers and networks named `elft...` (the
    suite's per-session prefix, tests/deploy/conftest.py) older than any run (CI stops a run at 90 min).
    Each leftover network holds one of dockerd's ~31 default address pools: a dozen of them made a later
    run's own network fail ("could not find an available, non-overlapping IPv4 address pool")."""
    import datetime as dt

    def docker(*args: str) -> list[str]:
        out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
        return out.stdout.split() if out.returncode == 0 else []

    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than_s)

    def stale(kind: str, ids: list[str]) -> list[str]:
        if not ids:
            return []
        lines = subprocess.run(["docker", kind, "inspect", "--format", "{{.Id}} {{.Created}}", *ids],
                               capture_output=True, text=True, timeout=60).stdout.splitlines()
        old = []
        for line in lines:
            ident, _, created = line.partition(" ")
            try:  # e.g. 2026-11-27T19:01:31.238444291Z (containers) or 2026-11-27 19:01:31.23 +0000 UTC
                when = dt.datetime.fromisoformat(created.replace(" UTC", "").replace(" +0000", "+00:00")[:19])
            except ValueError:
                continue
            if when.replace(tzinfo=dt.UTC) < cutoff:
                old.append(ident)
        return old

    containers = stale("container", docker("ps", "-aq", "--filter", "name=^/elft"))
    if containers:
        docker("rm", "-f", *containers)
    for net in stale("network", docker("network", "ls", "-q", "--filter", "name=^elft")):
        docker("network", "rm", net)  # refused while a (newer) container still uses it: kept


REGISTRY_BIN = os.environ.get("ELFCTL_REGISTRY_BIN", "/usr/bin/docker-registry")


def start_registry(folder: Path) -> tuple[str, int]:
    """Debian's docker-registry (the distribution registry) on 127.0.0.1:free port, storage in folder.
    Returns (host:port, pid)."""
    if not Path(REGISTRY_BIN).exists():
        raise RuntimeError(f"{REGISTRY_BIN} not found (apt-get install docker-registry)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (folder / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n")
    log = open(folder / "log", "ab")
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(folder / "config.yml")], stdout=log, stderr=log,
                            start_new_session=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                (folder / "pid").write_text(str(proc.pid))
                return f"127.0.0.1:{port}", proc.pid
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"docker-registry did not listen on {port} (see {folder / 'log'})")


def start_keyring(folder: Path, wait_s: float = 20) -> dict[str, str]:
    """A private D-Bus session bus with gnome-keyring's Secret Service, unlocked with a throw-away
    password, so pytest itself needs no `dbus-run-session`. Returns the ELFCTL_TEST_KEYRING_* vars;
    stop_keyring(folder) ends it (gnome-keyring-daemon exits with its bus)."""
    for tool in ("dbus-daemon", "gnome-keyring-daemon", "dbus-send"):
        if not shutil.which(tool):
            raise RuntimeError(f"{tool} not found (apt-get install dbus dbus-bin gnome-keyring)")
    stop_keyring(folder)
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "run").mkdir(parents=True, mode=0o700)
    (folder / "data").mkdir()
    proc = subprocess.run(["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1"],
                          capture_output=True, text=True, timeout=10, check=True)
    address, pid = proc.stdout.split()[:2]
    (folder / "dbus.pid").write_text(pid)
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": address, "XDG_RUNTIME_DIR": str(folder / "run"),
           "XDG_DATA_HOME": str(folder / "data")}
    subprocess.run(["gnome-keyring-daemon", "--unlock", "--components=secrets", "--daemonize"], input="PASS",
                   env=env, capture_output=True, text=True, timeout=wait_s, check=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        has = subprocess.run(["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus", "/",
                              "org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.secrets"],
                             env=env, capture_output=True, text=True, timeout=5)
        if "boolean true" in has.stdout:
            return {"ELFCTL_TEST_KEYRING_BUS": address, "ELFCTL_TEST_KEYRING_DIR": str(folder)}
        time.sleep(0.2)
    stop_keyring(folder)
    raise RuntimeError(f"gnome-keyring's Secret Service did not appear on the bus within {wait_s:g}s")


def _kill_pidfile(pidfile: Path) -> None:
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text()), 15)
        except (ProcessLookupError, ValueError):
            pass
        pidfile.unlink(missing_ok=True)


def stop_registry(folder: Path) -> None:
    _kill_pidfile(folder / "pid")


def stop_keyring(folder: Path) -> None:
    """gnome-keyring-daemon exits with its bus."""
    _kill_pidfile(folder / "dbus.pid")


def up() -> dict[str, str]:
    STATE.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {}
    pg_folder = STATE / "pg"
    if pg_folder.exists():
        if (pg_folder / "data").exists():
            stop_postgres(pg_folder / "data")
        shutil.rmtree(pg_folder, ignore_errors=True)
    try:
        env["ELFCTL_TEST_PG_DSN"], _data = start_postgres(pg_folder)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        if not may_skip():
            raise
        print(f"# PostgreSQL unavailable: {exc}", file=sys.stderr)
    try:
        ensure_dockerd()
        prune_stale_test_objects()
        env["ELFCTL_TEST_DOCKER"] = "1"
    except RuntimeError as exc:
        if not may_skip():
            raise
        print(f"# docker unavailable: {exc}", file=sys.stderr)
    stop_registry(STATE / "registry")
    try:
        env["ELFCTL_TEST_REGISTRY"], _pid = start_registry(STATE / "registry")
    except RuntimeError as exc:
        if not may_skip():
            raise
        print(f"# registry unavailable: {exc}", file=sys.stderr)
    try:
        env.update(start_keyring(STATE / "keyring"))
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        if not may_skip():
            raise
        print(f"# OS keyring unavailable: {exc}", file=sys.stderr)
    return env


def down() -> None:
    stop_registry(STATE / "registry")
    data = STATE / "pg" / "data"
    if data.exists():
        stop_postgres(data)
    stop_keyring(STATE / "keyring")


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "up"
    if cmd == "up":
        try:
            started = up()
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            print(f"error: a service the tests need cannot start: {exc}", file=sys.stderr)
            if not in_ci():
                print(f"hint: install it (scripts/system-deps --test), or run with {ALLOW_SKIP}=1 to skip "
                      "the tests that need it", file=sys.stderr)
            sys.exit(3)
        for key, value in started.items():
            print(f"export {key}={value}")
    elif cmd == "down":
        down()
    else:
        sys.exit(f"usage: python -m tests.realservices up|down (got {cmd!r})")
