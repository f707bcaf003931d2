"""One deploy at a time per team: a lease row in `deploy_locks` (owner, host, pid, heartbeat, expiry).

The holder renews the lease from a heartbeat thread. A lease whose expiry has passed, or whose holder
is a dead process on this host, is taken over without any manual "force": a killed deploy never
leaves a team stuck (Helm's pending-upgrade, Kamal's stale lock). Every change is one conditional
statement, so two processes racing for the row cannot both win, on SQLite and Postgres alike.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from elfctl.domain.clock import iso, now
from elfctl.errors import LockTimeout


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) holds nothing any more.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass
class Holder:
    owner: str
    host: str
    pid: int
    acquired_at: str
    heartbeat_at: str
    expires_at: str

    def describe(self) -> str:
        return (f"{self.owner} (pid {self.pid} on {self.host}, since {self.acquired_at}, "
                f"lease until {self.expires_at})")


def holder(store, team: str) -> Holder | None:
    rows = store.query(
        "SELECT owner, host, pid, acquired_at, heartbeat_at, expires_at FROM deploy_locks WHERE team = ?",
        (team,),
    )
    return Holder(**rows[0]) if rows else None


def try_acquire(store, team: str, owner: str, ttl_s: float) -> Holder | None:
    """Take the lease if free, expired, or held by a dead process here. Returns None on success,
    else the current holder."""
    host, pid = socket.gethostname(), os.getpid()
    t = now()
    stamp, expiry = iso(t), iso(t + dt.timedelta(seconds=ttl_s))
    store.execute(
        "INSERT INTO deploy_locks (team, owner, host, pid, acquired_at, heartbeat_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (team) DO NOTHING",
        (team, owner, host, pid, stamp, stamp, expiry),
    )
    current = holder(store, team)
    if current is None:  # released between the two statements: try again
        return try_acquire(store, team, owner, ttl_s)
    if current.owner == owner:
        return None
    stale = current.expires_at < stamp or (current.host == host and not _pid_alive(current.pid))
    if stale:
        # Compare-and-swap on the stale owner: of two takers, one updates the row, the other sees 0.
        taken = store.execute(
            "UPDATE deploy_locks SET owner = ?, host = ?, pid = ?, acquired_at = ?, "
            "heartbeat_at = ?, expires_at = ? WHERE team = ? AND owner = ?",
            (owner, host, pid, stamp, stamp, expiry, team, current.owner),
        )
        if taken:
            return None
        return holder(store, team) or current
    return current


def renew(store, team: str, owner: str, ttl_s: float) -> bool:
    t = now()
    return bool(
        store.execute(
            "UPDATE deploy_locks SET heartbeat_at = ?, expires_at = ? WHERE team = ? AND owner = ?",
            (iso(t), iso(t + dt.timedelta(seconds=ttl_s)), team, owner),
        )
    )


def release(store, team: str, owner: str) -> None:
    store.execute("DELETE FROM deploy_locks WHERE team = ? AND owner = ?", (team, owner))


@contextmanager
def lease(
    store, team: str, who: str, ttl_s: float = 30.0, wait_s: float = 0.0, progress=None, poll_s: float = 0.25
) -> Iterator[str]:
    """Hold the team's deploy lease for the block, renewing it every ttl/3 seconds."""
    owner = f"{who}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        current = try_acquire(store, team, owner, ttl_s)
        if current is None:
            break
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"team {team}: another deploy holds the lock: {current.describe()}",
                hint="wait for it to finish, or pass --lock-wait SECONDS to wait; a lock left by "
                f"a killed process is recovered when its lease expires ({current.expires_at})",
            )
        if progress and not told:
            progress(f"waiting for the deploy lock of {team}, held by {current.describe()}")
            told = True
        time.sleep(poll_s)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(ttl_s / 3):
            try:
                renew(store, team, owner, ttl_s)
            except Exception:  # a missed beat only shortens the lease; the next one retries
                pass

    thread = threading.Thread(target=beat, name=f"deploy-lock-{team}", daemon=True)
    thread.start()
    try:
        yield owner
    finally:
        stop.set()
        thread.join(timeout=5)
        release(store, team, owner)
