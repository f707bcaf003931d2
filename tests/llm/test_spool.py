"""The spool file: a shared mapping that grows past its first chunk and empties once all is recorded;
replayed once its writer is gone (killed, a zombie, or on another host and silent past STALE_S)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

from elfctl.domain.usage import UsageRow
from elfctl.services.llm import spool as spool_mod
from tests.conftest import kill_unreaped, unavailable
from tests.llm.test_calls import _team
from tests.llm.test_concurrency import KILLER


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


# --- Replay of files whose writer is gone ------------------------------------------------------


def _other_host(name: str, argv: list[str]) -> list[str]:
    """argv run under hostname `name` (its own UTS namespace): a container restarted elsewhere."""
    if not shutil.which("unshare"):
        unavailable("unshare (util-linux) is needed to run a process under another hostname")
    return ["unshare", "-u", "sh", "-c", f'hostname {name} && exec "$@"', "sh", *argv]


def _files(project):
    return list((project / ".elf" / "spool").glob("spool-*.jsonl"))


def test_killed_after_the_answer_then_replayed_from_another_host(llm_env, llm_server):
    """SIGKILL right after the provider answered: the row is in the spool, not the store. A process
    on another host (the team's container, restarted) cannot check the writer's PID: it replays the
    file once its heartbeat is STALE_S old, and not before."""
    project, store = llm_env
    _team(project, fallbacks=(), budget={"daily_usd": 1})
    llm_server.answer("gpt-4o", prompt=10, completion=40)
    proc = subprocess.run([sys.executable, "-c", KILLER, llm_server.url], cwd=project, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    (left,) = _files(project)
    assert "killed-after-answer" in left.read_text()
    assert store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"] == 0

    def report_from_elsewhere():
        cmd = _other_host("restarted-team-7f9c", [sys.executable, "-m", "elfctl", "cost", "report", "--json"])
        run = subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)

    report_from_elsewhere()  # the file is fresh: its writer may live, over there
    assert left.exists() and store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"] == 0
    old = time.time() - spool_mod.STALE_S - 1  # no heartbeat for longer than STALE_S
    os.utime(left, (old, old))
    report_from_elsewhere()
    row = store.query("SELECT * FROM api_usage WHERE request_id = 'killed-after-answer'")
    assert len(row) == 1 and row[0]["cost_nanousd"] == 10 * 2500 + 40 * 10000
    assert not left.exists()
    assert store.query("SELECT COUNT(*) AS n FROM budget_reservations")[0]["n"] == 0  # settled


WRITER = """
import sys, time
from elfctl.services.llm import spool as spool_mod
from elfctl.domain.usage import UsageRow
spool_mod.HEARTBEAT_S = 0.2
s = spool_mod.Spool(__import__("pathlib").Path(sys.argv[1]))
s.put(UsageRow("in-flight", "2026-01-01T00:00:00.000+00:00", "alpha", "openai/gpt-4o", "openai/gpt-4o"))
print("spooled", flush=True)
time.sleep(600)
"""


def _writer(folder, argv_wrap=lambda argv: argv) -> subprocess.Popen:
    proc = subprocess.Popen(argv_wrap([sys.executable, "-c", WRITER, str(folder)]), stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "spooled"
    return proc


def _recorded(store) -> int:
    return store.query("SELECT COUNT(*) AS n FROM api_usage WHERE request_id = 'in-flight'")[0]["n"]


def test_a_live_writer_elsewhere_is_left_alone_while_its_heartbeat_beats(llm_env, tmp_path, monkeypatch):
    _project, store = llm_env
    monkeypatch.setattr(spool_mod, "STALE_S", 1.0)
    proc = _writer(tmp_path, lambda argv: _other_host("team-elsewhere", argv))
    try:
        time.sleep(2.5)  # older than STALE_S: only the heartbeat keeps the file young
        assert spool_mod.Spool(tmp_path).replay(store) == 0
        assert _recorded(store) == 0 and len(list(tmp_path.glob("spool-*.jsonl"))) == 1
    finally:
        proc.kill()
        proc.wait()
    time.sleep(1.5)
    assert spool_mod.Spool(tmp_path).replay(store) == 1
    assert _recorded(store) == 1 and list(tmp_path.glob("spool-*.jsonl")) == []


def test_a_zombie_writer_on_this_host_is_replayed(llm_env, tmp_path):
    _project, store = llm_env
    proc = _writer(tmp_path)
    try:
        kill_unreaped(proc)
        assert spool_mod.Spool(tmp_path).replay(store) == 1
        assert _recorded(store) == 1
    finally:
        proc.wait()


def test_a_writer_whose_file_was_replayed_while_it_lives_keeps_its_rows(tmp_path, monkeypatch):
    """Paused past STALE_S elsewhere, its file replayed and removed: the heartbeat puts the rows
    back in a new file, so what it spools next is not written to a file nobody can find."""
    monkeypatch.setattr(spool_mod, "HEARTBEAT_S", 0.05)
    s = spool_mod.Spool(tmp_path)
    s.put(_row(1))
    (first,) = tmp_path.glob("spool-*.jsonl")
    first.unlink()
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("spool-*.jsonl")):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    s.put(_row(2))
    (second,) = tmp_path.glob("spool-*.jsonl")
    assert [json.loads(x)["request_id"] for x in _lines(second)] == ["req-1", "req-2"]
    s.close()
