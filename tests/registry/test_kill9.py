"""kill -9 in the middle of registering a large file on Postgres: nothing of it is registered, no
lock is left behind, and the next registration works at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg

from elfctl.services.registry import entries as reg


def test_kill9_mid_file_registers_nothing(pg_url, open_store, project, monkeypatch):
    from elfctl import config
    from elfctl.bootstrap import migrations_dir
    from elfctl.services.platform import migrate

    store = open_store(pg_url)
    migrate.migrate(store, migrations_dir(config.load(cwd=project)))
    big = project / "big.yaml"
    big.write_text("".join(f"- {{name: svc-{i}, url: 'http://svc-{i}:80', capabilities: [bulk]}}\n" for i in range(5000)))
    proc = subprocess.Popen([sys.executable, "-m", "elfctl", "registry", "register", "--file", str(big)], cwd=project,
                            env={**os.environ, "ELFCTL_STORE_URL": pg_url}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    db = pg_url.rsplit("/", 1)[1]
    deadline = time.monotonic() + 300
    with psycopg.connect(pg_url, autocommit=True) as watch:
        while True:  # until its transaction has written rows (seen from inside the server)
            busy = watch.execute("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                                 "WHERE a.datname = %s AND l.mode = 'RowExclusiveLock' AND l.relation IN "
                                 "('registry_entries'::regclass, 'registry_capabilities'::regclass)", (db,)).fetchone()[0]
            if busy:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the registration never began writing"
            time.sleep(0.02)
        proc.kill()
        proc.wait(10)
        assert proc.returncode == -9  # killed mid-write, not finished
        assert watch.execute("SELECT count(*) FROM registry_entries").fetchone()[0] == 0
    assert reg.find(store, capability="bulk") == []
    done = subprocess.run([sys.executable, "-m", "elfctl", "registry", "register", "after", "--url", "http://a:1"],
                          cwd=project, env={**os.environ, "ELFCTL_STORE_URL": pg_url}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert [e.name for e in reg.find(store)] == ["after"]
