"""A local spool so a call is never lost between the provider's answer and the store's commit.

Each process appends the usage row to `<spool>/spool-<host>-<pidns>-<pid>-<start>-<token>.jsonl` right after the answer, then
records it in the store. The file is a shared memory mapping (MAP_SHARED): a row copied into it is in
the page cache at once, so it survives the process being killed exactly like a `write()` would (only
a machine crash before the kernel writes the page back loses it), but it costs no system call. That
matters: a system call releases the GIL, and right after litellm returns, its post-call logging
thread takes the GIL for a millisecond or more. The file grows in CHUNK steps and is zero-padded;
readers stop at the first NUL. While no call is in flight every row in the file is recorded, so the
process empties the file now and then and removes it at exit. `replay` records the files of
processes that are gone, idempotently by request id: a writer on this host by its PID (a zombie or a
reused PID is gone), any other by its file's age, which a heartbeat thread keeps fresh while the
writer lives (team processes run in containers whose hostname changes on every restart).
"""

from __future__ import annotations

import atexit
import json
import mmap
import os
import threading
import time
import uuid
from pathlib import Path

from elfctl import liveness
from elfctl.domain.usage import UsageRow
from elfctl.ports import Store
from elfctl.services.cost import ledger

TRUNCATE_EVERY = 1000  # rows recorded before the file is emptied (when nothing is in flight)
CHUNK = 1 << 20  # the mapped file grows by this much (sparse until written)
HEARTBEAT_S = 5.0  # a live writer touches its file this often
STALE_S = 30.0  # a file untouched this long, from a writer whose PID cannot be checked here, is replayed


def _writer(path: Path) -> liveness.Writer | None:
    """Who wrote a spool file, from its name (the host may hold '-': the other fields do not)."""
    rest = path.stem.removeprefix("spool-")
    parts = rest.rsplit("-", 4)
    try:
        if len(parts) == 5 and all(p.isdigit() for p in parts[1:4]):
            host, ns, pid, started, _token = parts
            return liveness.Writer(host, int(pid), int(started) or None, None if ns == "0" else ns)
        host, pid, _token = rest.rsplit("-", 2)  # an older name: spool-<host>-<pid>-<token>
        return liveness.Writer(host, int(pid))
    except ValueError:
        return None


class Spool:
    def __init__(self, folder: Path):
        self.folder = folder
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._mm: mmap.mmap | None = None
        self._off = 0  # where the next row goes
        self._path: Path | None = None
        self._pid = 0
        self._inflight = 0
        self._recorded = 0
        self._stop = threading.Event()

    def _new_file(self) -> Path:
        # The token keeps a new process from reusing the unreplayed file of a dead one with its pid.
        me = liveness.me()
        host = me.host.replace("/", "_")
        return self.folder / f"spool-{host}-{me.pidns or 0}-{me.pid}-{me.started or 0}-{uuid.uuid4().hex[:8]}.jsonl"

    def put(self, row: UsageRow) -> None:
        data = (json.dumps(row.to_dict()) + "\n").encode()
        with self._lock:
            if self._mm is None or self._pid != os.getpid():  # first use, or a forked child
                self._open()
            end = self._off + len(data)
            if end > len(self._mm):
                self._mm.resize(max(2 * len(self._mm), end + CHUNK))
            self._mm[self._off : end] = data
            self._off = end
            self._inflight += 1

    def _open(self) -> None:
        self._pid, self._inflight, self._recorded, self._off = os.getpid(), 0, 0, 0
        self._map(b"")
        atexit.register(self.close)
        self._stop = threading.Event()
        threading.Thread(target=self._beat, args=(self._stop,), name="spool-heartbeat", daemon=True).start()

    def _map(self, data: bytes) -> None:
        """A new file holding `data`, mapped."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._new_file()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        size = CHUNK * (1 + len(data) // CHUNK)
        os.ftruncate(fd, size)
        mm = mmap.mmap(fd, size)
        mm[: len(data)] = data
        self._path, self._fd, self._mm = path, fd, mm

    def _beat(self, stop: threading.Event) -> None:
        """Keep the file's age young while this process lives: other hosts judge it by that age."""
        while not stop.wait(HEARTBEAT_S):
            with self._lock:
                if self._mm is None or self._pid != os.getpid():
                    return
                try:
                    os.utime(self._path)
                except FileNotFoundError:
                    # Replayed while this process lives (paused past STALE_S, or a clock skew): its
                    # rows are recorded, but the ones still to come need a file a replay can find.
                    old_mm, old_fd = self._mm, self._fd
                    self._map(old_mm[: self._off])
                    old_mm.close()
                    os.close(old_fd)
                except OSError:
                    pass  # the next beat retries

    def done(self, row: UsageRow) -> None:
        with self._lock:
            if self._mm is None or self._pid != os.getpid():
                return
            self._inflight -= 1
            self._recorded += 1
            if self._inflight == 0 and self._recorded >= TRUNCATE_EVERY:
                self._mm[: self._off] = bytes(self._off)  # every row is recorded: start over
                self._off = self._recorded = 0

    def close(self) -> None:
        with self._lock:
            if self._mm is None or self._pid != os.getpid():
                return
            self._stop.set()
            self._mm.close()
            os.close(self._fd)
            self._mm = self._fd = None
            if self._inflight == 0:
                self._path.unlink(missing_ok=True)

    def pending(self) -> list[Path]:
        """Spool files whose writer is gone, on this host or any other."""
        if not self.folder.is_dir():
            return []
        out = []
        for path in sorted(self.folder.glob("spool-*.jsonl")):
            writer = _writer(path)
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                continue  # replayed meanwhile
            if writer is not None and liveness.gone(writer, age, STALE_S):
                out.append(path)
        return out

    def replay(self, store: Store) -> int:
        """Record every row left by a dead process (settling its reservation). Returns how many were new."""
        new = 0
        for path in self.pending():
            rows = []
            try:
                lines = path.read_bytes().split(b"\0", 1)[0].decode(errors="replace").splitlines()
            except OSError:
                continue  # another process replayed and removed it
            for line in lines:
                try:
                    rows.append(UsageRow(**json.loads(line)))
                except (ValueError, TypeError):
                    continue  # a torn last line (power loss): nothing to trust there
            new += ledger.record(store, rows)
            path.unlink(missing_ok=True)
        return new
