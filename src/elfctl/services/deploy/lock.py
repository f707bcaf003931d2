"""One deploy at a time per team: a lease row in `deploy_locks` (owner, host, pid, heartbeat, expiry).

The holder renews the lease from a heartbeat thread. A lease whose expiry has passed, or whose holder
is a dead process on this host, is taken over without any manual "force": a killed deploy never
leaves a team stuck (Helm's pending-upgrade, Kamal's stale lock). Every change is one conditional
statement, so two processes racing for the row cannot both win, on SQLite and Postgres alike.

A holder can lose its lease while it runs: paused, or cut off from the store for longer than the
ttl, it is taken over by the next deploy. The owner token (unique per acquisition) is the fencing
token: the deploy renews the lease right before the switch (`Lease.renew`) and in the transaction of
every history write (`Lease.fence`), so a holder that lost its lease never switches and never writes.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from elfctl import liveness
from elfctl.domain.clock import iso, now
from elfctl.errors import ElfError, LeaseLost, LockTimeout


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

    def gone(self, t: dt.datetime) -> bool:
        """Expired, or its process is gone (another host's only by its heartbeat: expiry)."""
        beat, expiry = (dt.datetime.fromisoformat(x) for x in (self.heartbeat_at, self.expires_at))
        if expiry < t:
            return True
        return liveness.gone(liveness.Writer(self.host, self.pid), (t - beat).total_seconds(),
                             (expiry - beat).total_seconds())


def holder(store, team: str) -> Holder | None:
    rows = store.query(
        "SELECT owner, host, pid, acquired_at, heartbeat_at, expires_at FROM deploy_locks WHERE team = ?",
        (team,),
    )
    return Holder(**rows[0]) if rows else None


def try_acquire(store, team: str, owner: str, ttl_s: float) -> Holder | None:
    """Take the lease if free, expired, or held by a dead process here. Returns None on success,
    else the current holder."""
    me = liveness.me()
    t = now()
    stamp, expiry = iso(t), iso(t + dt.timedelta(seconds=ttl_s))
    store.execute(
        "INSERT INTO deploy_locks (team, owner, host, pid, acquired_at, heartbeat_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (team) DO NOTHING",
        (team, owner, me.host, me.pid, stamp, stamp, expiry),
    )
    current = holder(store, team)
    if current is None:  # released between the two statements: try again
        return try_acquire(store, team, owner, ttl_s)
    if current.owner == owner:
        return None
    if current.gone(t):
        # Compare-and-swap on the stale owner and the expiry seen: of two takers one updates the row,
        # the other sees 0; and a holder that renewed meanwhile keeps its lease.
        taken = store.execute(
            "UPDATE deploy_locks SET owner = ?, host = ?, pid = ?, acquired_at = ?, "
            "heartbeat_at = ?, expires_at = ? WHERE team = ? AND owner = ? AND expires_at = ?",
            (owner, me.host, me.pid, stamp, stamp, expiry, team, current.owner, current.expires_at),
        )
        if taken:
            return None
        return holder(store, team) or current
    return current


def renew(store, team: str, owner: str, ttl_s: float) -> bool:
    """Extend the lease if `owner` still holds it (also once expired, as long as nobody took it)."""
    t = now()
    return bool(
        store.execute(
            "UPDATE deploy_locks SET heartbeat_at = ?, expires_at = ? WHERE team = ? AND owner = ?",
            (iso(t), iso(t + dt.timedelta(seconds=ttl_s)), team, owner),
        )
    )


def release(store, team: str, owner: str) -> None:
    store.execute("DELETE FROM deploy_locks WHERE team = ? AND owner = ?", (team, owner))


class Lease:
    """A held lease: what the deploy checks before it switches and in every history write."""

    def __init__(self, store, team: str, owner: str, ttl_s: float, valid_until: float):
        self.store, self.team, self.owner, self.ttl_s = store, team, owner, ttl_s
        self.valid_until = valid_until  # monotonic: no other deploy can take the lease before then
        self.taken = False  # renew found another owner: lost for good

    def _lost(self, why: str, step: str) -> LeaseLost:
        return LeaseLost(
            f"team {self.team}: lost the deploy lease ({why}); stopped before {step}",
            hint=f"another deploy may have taken the team over: see `elfctl deployments {self.team}`, "
            "then deploy again; raise deploy.lock_ttl_s if the store is often unreachable for longer",
        )

    def _outage(self, exc: ElfError, step: str) -> ElfError:
        """A store error: the lease is lost once it went unrenewed past its ttl, else it stands."""
        t = time.monotonic()
        if t < self.valid_until:
            return exc
        late = t - (self.valid_until - self.ttl_s)
        return self._lost(
            f"the store was unreachable and the lease not renewed for {late:.1f}s, longer than its "
            f"{self.ttl_s:g}s ttl: {exc.message}",
            step,
        )

    def renew(self, via=None, step: str = "the switch: the old version keeps serving") -> None:
        """Extend the lease now (through `via`, a transaction, if given), or raise LeaseLost: taken
        over, or not renewed for longer than its ttl while the store was unreachable."""
        if self.taken:
            raise self._lost("another deploy took it over", step)
        t0 = time.monotonic()
        try:
            held = renew(via or self.store, self.team, self.owner, self.ttl_s)
        except LeaseLost:
            raise
        except ElfError as exc:
            raise self._outage(exc, step) from None
        if not held:
            self.taken = True
            raise self._lost("another deploy took it over", step)
        self.valid_until = t0 + self.ttl_s

    @contextmanager
    def write(self) -> Iterator:
        """A transaction that renews the lease first: it commits only while this deploy holds it."""
        step = "recording: this deploy's history is not written"
        try:
            with self.store.transaction() as tx:
                self.renew(tx, step)
                yield tx
        except LeaseLost:
            raise
        except ElfError as exc:
            raise self._outage(exc, step) from None


@contextmanager
def lease(
    store, team: str, who: str, ttl_s: float = 30.0, wait_s: float = 0.0, progress=None, poll_s: float = 0.25
) -> Iterator[Lease]:
    """Hold the team's deploy lease for the block, renewing it every ttl/3 seconds."""
    owner = f"{who}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        t0 = time.monotonic()
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
    held = Lease(store, team, owner, ttl_s, t0 + ttl_s)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(ttl_s / 3):
            try:
                held.renew()
            except LeaseLost:
                if held.taken:
                    return  # for good: the switch and every write are refused
            except ElfError:
                pass  # store unreachable: the next beat retries; past the ttl, renew() says lost

    thread = threading.Thread(target=beat, name=f"deploy-lock-{team}", daemon=True)
    thread.start()
    try:
        yield held
    finally:
        stop.set()
        thread.join(timeout=5)
        try:
            release(store, team, owner)
        except ElfError:
            pass  # store unreachable: the lease expires after its ttl; the deploy's own outcome stands
