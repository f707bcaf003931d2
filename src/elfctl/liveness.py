"""Is the process that wrote a lease row or a spool file still there?

One answer for the deploy lease and the usage spool. On this host, in this PID namespace, the PID
says it: a process that is gone, a zombie (killed, not yet reaped: it holds nothing any more) or a
PID reused by a later process (its start time differs) is dead. Anywhere else a PID means nothing
(a container's hostname and PID namespace change on every restart, and its first process is often
PID 1 again), so the writer's last sign of life decides: gone once it is older than the writer's
heartbeat allows.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Writer:
    host: str
    pid: int
    started: int | None = None  # start time in clock ticks since boot (/proc/PID/stat field 22)
    pidns: str | None = None  # PID namespace id: PIDs compare only within one


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (which may hold spaces and ')')."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


@cache
def _pidns() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:[").rstrip("]")
    except OSError:
        return None


def me() -> Writer:
    """This process as a lease or spool file records it (the PID is read now: forks differ)."""
    pid = os.getpid()
    fields = _stat(pid)
    return Writer(socket.gethostname(), pid, int(fields[19]) if fields else None, _pidns())


def pid_alive(pid: int, started: int | None = None) -> bool:
    """Whether PID runs here and is not a zombie; with `started`, whether it is still that process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    fields = _stat(pid)
    if fields is None:
        return True  # no /proc to read: the signal said it exists
    if fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def gone(writer: Writer, beat_age_s: float, stale_after_s: float) -> bool:
    """Whether `writer` is gone. `beat_age_s`: seconds since its last heartbeat; past `stale_after_s`
    a writer whose PID cannot be checked from here counts as gone."""
    here = me()
    if writer.host == here.host and writer.pidns in (None, here.pidns):
        return not pid_alive(writer.pid, writer.started)
    return beat_age_s > stale_after_s
