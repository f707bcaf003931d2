"""A local spool so a call is never lost between the provider's answer and the store's commit.

Each process appends the usage row to `<spool>/spool-<host>-<pid>.jsonl` right after the answer (one
`write()` on an open file: it survives the process being killed; only a machine crash before the
page cache is flushed loses it), then records it in the store. While no call is in flight every row
in the file is recorded, so the process empties the file now and then and removes it at exit.
`replay` records the files of processes that are gone, idempotently by request id.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import threading
from pathlib import Path

from elfctl.domain.usage import UsageRow
from elfctl.ports import Store
from elfctl.services import ledger

TRUNCATE_EVERY = 1000  # rows recorded before the file is emptied (when nothing is in flight)


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
        self._pid = 0
        self._inflight = 0
        self._recorded = 0

    def _file(self, pid: int) -> Path:
        return self.folder / f"spool-{self._host}-{pid}.jsonl"

    def put(self, row: UsageRow) -> None:
        data = (json.dumps(row.to_dict()) + "\n").encode()
        with self._lock:
            if self._fd is None or self._pid != os.getpid():  # first use, or a forked child
                self.folder.mkdir(parents=True, exist_ok=True)
                self._pid, self._inflight, self._recorded = os.getpid(), 0, 0
                self._fd = os.open(self._file(self._pid), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                atexit.register(self.close)
            os.write(self._fd, data)
            self._inflight += 1

    def done(self, row: UsageRow) -> None:
        with self._lock:
            if self._fd is None or self._pid != os.getpid():
                return
            self._inflight -= 1
            self._recorded += 1
            if self._inflight == 0 and self._recorded >= TRUNCATE_EVERY:
                os.ftruncate(self._fd, 0)
                self._recorded = 0

    def close(self) -> None:
        with self._lock:
            if self._fd is None or self._pid != os.getpid():
                return
            os.close(self._fd)
            self._fd = None
            if self._inflight == 0:
                self._file(self._pid).unlink(missing_ok=True)

    def pending(self) -> list[Path]:
        """Spool files of processes on this host that are gone."""
        if not self.folder.is_dir():
            return []
        out = []
        for path in sorted(self.folder.glob(f"spool-{self._host}-*.jsonl")):
            try:
                pid = int(path.stem.rsplit("-", 1)[1])
            except ValueError:
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
                lines = path.read_text().splitlines()
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
