"""Is a lease's or a spool file's writer still there: by PID here, by heartbeat age elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import kill_unreaped

from elfctl import liveness


def test_a_killed_unreaped_process_is_gone():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert liveness.pid_alive(proc.pid)
        kill_unreaped(proc)
        assert not liveness.pid_alive(proc.pid)  # a zombie: os.kill(pid, 0) still succeeds
    finally:
        proc.wait()
    assert not liveness.pid_alive(proc.pid)


def test_a_reused_pid_is_told_apart_by_its_start_time():
    me = liveness.me()
    assert me.pid == os.getpid() and me.started is not None and me.pidns
    assert liveness.pid_alive(me.pid, me.started)
    assert not liveness.pid_alive(me.pid, me.started - 1)  # an earlier process that had this PID
    assert liveness.gone(liveness.Writer(me.host, me.pid, me.started - 1, me.pidns), 0, 60)
    assert not liveness.gone(me, 10_000, 60)  # here, the PID decides, not the age


def test_elsewhere_the_heartbeat_age_decides():
    me = liveness.me()
    for writer in (
        liveness.Writer("another-host", me.pid, me.started, me.pidns),  # another machine or container
        liveness.Writer(me.host, me.pid, me.started, "4026500000"),  # same hostname, another PID namespace
    ):
        assert not liveness.gone(writer, 5, 60)
        assert liveness.gone(writer, 61, 60)
