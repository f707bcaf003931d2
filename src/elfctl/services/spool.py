"""A local spool so a call is never lost between the provider's answer and the store's commit.

The usage row is written to `<spool>/<request_id>.json` right after the answer (a plain write: it
survives the process being killed; only a machine crash before the page cache is flushed loses it),
then recorded, then the file is removed. `replay` records whatever is left, idempotently by
request id, so replaying a file a live process is about to record itself counts it once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from elfctl.domain.usage import UsageRow
from elfctl.ports import Store
from elfctl.services import ledger


class Spool:
    def __init__(self, folder: Path):
        self.folder = folder

    def _path(self, request_id: str) -> Path:
        return self.folder / f"{request_id}.json"

    def put(self, row: UsageRow) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(row.request_id)
        # One write() of a few hundred bytes: a reader sees the whole row or none of it in practice;
        # a torn file (power loss) fails to parse and is left alone by replay.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(row.to_dict()).encode())
        finally:
            os.close(fd)
        return path

    def done(self, row: UsageRow) -> None:
        try:
            self._path(row.request_id).unlink()
        except FileNotFoundError:
            pass

    def pending(self) -> list[Path]:
        return sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []

    def replay(self, store: Store) -> int:
        """Record every spooled row (settling its reservation). Returns how many were new."""
        new = 0
        for path in self.pending():
            try:
                row = UsageRow(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue  # removed meanwhile, or not ours
            new += ledger.record(store, [row])
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        return new
