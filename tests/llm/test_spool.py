"""The spool file: a shared mapping that grows past its first chunk and empties once all is recorded."""

from __future__ import annotations

import json

from elfctl.domain.usage import UsageRow
from elfctl.services.llm import spool as spool_mod


def _row(i: int) -> UsageRow:
    return UsageRow(f"req-{i}", "2026-01-01T00:00:00.000+00:00", "alpha", "openai/gpt-4o", "openai/gpt-4o")


def _lines(path) -> list[str]:
    return path.read_bytes().split(b"\0", 1)[0].decode().splitlines()


def test_spool_grows_and_empties_when_everything_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_mod, "CHUNK", 512)  # a few rows per chunk: growth happens often
    monkeypatch.setattr(spool_mod, "TRUNCATE_EVERY", 50)
    s = spool_mod.Spool(tmp_path)
    rows = [_row(i) for i in range(40)]
    for r in rows:
        s.put(r)
    (path,) = tmp_path.glob("spool-*.jsonl")
    assert [json.loads(x)["request_id"] for x in _lines(path)] == [r.request_id for r in rows]
    for r in rows:
        s.done(r)
    for i in range(40, 50):  # the 50th recorded row (TRUNCATE_EVERY) with nothing in flight: the file starts over
        s.put(_row(i))
        s.done(_row(i))
    assert _lines(path) == []
    s.put(_row(99))  # kept in flight: stays in the file, which is not removed at close
    s.close()
    assert [json.loads(x)["request_id"] for x in _lines(path)] == ["req-99"]
