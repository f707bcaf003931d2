"""A local spool so a call is never lost between the provider's answer and the store's commit.

Each process appends the usage row to `<spool>/spool-<host>-<pid>-<token>.jsonl` right after the answer, then
records it in the store. The file is a shared memory mapping (MAP_SHARED): a row copied into it is in
the page cache at once, so it survives the process being killed exactly like a `write()` would (only
a machine crash before the kernel writes the page back loses it), but it costs no system call. That
matters: a system call releases the GIL, and right after litellm returns, its post-call logging
thread takes the GIL for a millisecond or more. The file grows in CHUNK steps and is zero-padded;
readers stop at the first NUL. While no call is in flight every row in the file is recorded, so the
process empties the file now and then and removes it at exit. `replay` records the files of
processes that are gone, idempotently by request id.
"""

from __future__ import annotations

import atexit
import json
import mmap
import os
import socket
import threading
import uuid
from pathlib import Path

from elfctl.domain.usage import UsageRow
from elfctl.ports import Store
from elfctl.services.cost import ledger

TRUNCATE_EVERY = 1000  # rows recorded before the file is emptied (when nothing is in flight)
CHUNK = 1 << 20  # the mapped file grows by this much (sparse until written)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    def __init__(self, folder: Path):
        self.folder = folder
        self._host = socket.gethostname().replace("-", "_")
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._mm: mmap.mmap | None = None
        self._off = 0  # where the next row goes
        self._path: Path | None = None
        self._pid = 0
        self._inflight = 0
        self._recorded = 0

    def _new_file(self) -> Path:
        # The token keeps a new process from reusing the unreplayed file of a dead one with its pid.
        return self.folder / f"spool-{self._host}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"

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
        self.folder.mkdir(parents=True, exist_ok=True)
        self._pid, self._inflight, self._recorded, self._off = os.getpid(), 0, 0, 0
        self._path = self._new_file()
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(self._fd, CHUNK)
        self._mm = mmap.mmap(self._fd, CHUNK)
        atexit.register(self.close)

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
            self._mm.close()
            os.close(self._fd)
            self._mm = self._fd = None
            if self._inflight == 0:
                self._path.unlink(missing_ok=True)

    def pending(self) -> list[Path]:
        """Spool files of processes on this host that are gone."""
        if not self.folder.is_dir():
            return []
        out = []
        for path in sorted(self.folder.glob(f"spool-{self._host}-*.jsonl")):
            try:
                pid = int(path.stem.split("-")[2])  # spool-<host>-<pid>[-<token>]
            except (ValueError, IndexError):
                continue
            if pid != os.getpid() and not _alive(pid):
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
