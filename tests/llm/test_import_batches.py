"""Issue 14 item 9: a long `cost import --strict` never blocks the platform, and stays all or nothing.

The import runs as a user runs it (`python -m elfctl` in a subprocess) against the real SQLite file
and the real Postgres server, while this process makes budgeted ledger writes (reserve, then record
the call that settles it), as an LLM call does.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from elfctl.domain.budget import Budget
from elfctl.domain.clock import iso
from elfctl.domain.usage import UsageRow
from elfctl.services.cost import budgets, import_batches, ledger
from tests.usage_gen import USAGE_COLUMNS, make_plan

TEAM = "marketing"  # one of usage_gen's teams: the import's rows for today hit its day and month counters


def write_usage(path, rows: int, bad_at: int | None = None, seed: int = 1) -> int:
    """`rows` calls of usage_gen's teams ending now, as elfctl JSON lines; `bad_at` (a line number)
    gets a cost that is not a number. Returns the number of lines."""
    plan = make_plan(days=20, rows=rows, now=dt.datetime.now(dt.UTC), seed=seed)
    n = 0
    with open(path, "w") as f:
        for t in plan.usage_rows():
            d = dict(zip(USAGE_COLUMNS, t, strict=True))
            del d["day"], d["priced"]
            d["outcome"] = "ok" if d["outcome"] == "ok" else "error"
            n += 1
            if n == bad_at:
                d["cost_nanousd"] = "lots"
            f.write(json.dumps(d) + "\n")
    return n


def totals(store) -> dict:
    one = lambda sql: store.query(sql)[0]["n"]  # noqa: E731
    return {
        "rows": one("SELECT COUNT(*) AS n FROM api_usage"),
        "cost": one("SELECT COALESCE(SUM(cost_nanousd), 0) AS n FROM api_usage"),
        "summary": sorted(tuple(r.values()) for r in store.query("SELECT * FROM daily_cost_summary")),
        "counters": sorted(tuple(r.values()) for r in store.query("SELECT * FROM spend_counters")),
        "imports": one("SELECT COUNT(*) AS n FROM usage_imports WHERE state <> 'done'"),
    }


def seed_ledger(store) -> None:
    """Usage already there (some of it in the file too), so 'unchanged' means something."""
    budgets.set_budget(store, Budget(TEAM, daily_nanousd=10**15, monthly_nanousd=10**16))
    today = iso(dt.datetime.now(dt.UTC))[:10]
    ledger.record(store, [UsageRow(request_id=f"old-{i}", ts=f"{today}T00:00:0{i}.000+00:00", team=TEAM,
                                   requested_model="gpt-4o", model="gpt-4o", cost_nanousd=1000 + i)
                          for i in range(5)])


def drift(elfctl, project) -> dict:
    r = elfctl("cost", "reconcile", "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def start_import(project, path, *extra):
    return subprocess.Popen([sys.executable, "-m", "elfctl", "cost", "import", str(path), "--json", *extra],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_strict_import_with_a_bad_row_near_the_end_changes_nothing(llm_env, elfctl, tmp_path):
    project, store = llm_env
    seed_ledger(store)
    before = totals(store)
    path = tmp_path / "usage.jsonl"
    n = write_usage(path, 12_000, bad_at=11_990)
    r = elfctl("cost", "import", str(path), "--strict", "--json", cwd=project)
    assert r.returncode == 2, r.stderr
    err = json.loads(r.stdout)["error"]
    assert err["message"] == f"{path}: line 11990: cost_nanousd must be a whole number, got 'lots'"
    assert "nothing was imported" in err["hint"] and n > import_batches.BATCH * 5
    assert totals(store) == before
    assert store.query("SELECT COUNT(*) AS n FROM usage_imports")[0]["n"] == 0  # nothing changed at all
    assert drift(elfctl, project)["drift"] == []


def test_strict_import_interrupted_while_recording_is_undone(llm_env, tmp_path):
    """Ctrl-C after a few batches are in the ledger: they are taken out again, rollups exact."""
    from elfctl.services.cost import reconcile, usage_import

    project, store = llm_env
    seed_ledger(store)
    before = totals(store)
    path = tmp_path / "usage.jsonl"
    n = write_usage(path, 12_000)
    checks = -(-n // import_batches.BATCH)  # progress calls of the checking pass
    calls = []

    def progress(count):
        calls.append(count)
        if len(calls) == checks + 3:  # three batches recorded
            assert store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"] == before["rows"] + 3 * 2000
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        usage_import.import_file(store, path, strict=True, progress=progress)
    assert totals(store) == before
    assert reconcile.reconcile(store).drift == []


def test_budgeted_writes_never_wait_on_a_long_strict_import(llm_env, tmp_path):
    """Before: one transaction for the whole file; a reservation started meanwhile waited for all of
    it (SQLite: the store's write lock; Postgres: the row locks of today's counters)."""
    project, store = llm_env
    seed_ledger(store)
    b = budgets.get(store, TEAM)
    path = tmp_path / "usage.jsonl"
    n = write_usage(path, 60_000)
    busy_s = 10.0  # store.busy_timeout_ms's default: what a writer waits before "database is locked"
    proc = start_import(project, path, "--strict")
    waits, failures, live = [], [], 0
    while proc.poll() is None:
        t = time.monotonic()
        try:
            res = budgets.reserve(store, b, 5000, ttl_s=60)
            ledger.record(store, [UsageRow(request_id=f"live-{live}", ts=iso(dt.datetime.now(dt.UTC)), team=TEAM,
                                           requested_model="gpt-4o", model="gpt-4o", cost_nanousd=4000,
                                           reservation_id=res.id)])
            live += 1
        except Exception as exc:  # noqa: BLE001 - any failure of a budgeted write is the bug
            failures.append(repr(exc))
        waits.append(time.monotonic() - t)
        if live % 50 == 0:  # a live import is never taken for dead
            assert import_batches.recover(store) == []
        time.sleep(0.01)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert json.loads(out)["imported"] == n
    print(f"\n{store.dialect}: {len(waits)} budgeted writes during the import, max wait {max(waits) * 1000:.0f} ms, "
          f"median {sorted(waits)[len(waits) // 2] * 1000:.0f} ms")
    assert failures == []
    assert len(waits) > 20  # the loop really ran alongside the import
    assert max(waits) < busy_s / 10
    assert store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"] == 5 + n + live
    from elfctl.services.cost import reconcile

    assert reconcile.reconcile(store).drift == []


@pytest.mark.parametrize("next_command", ["reconcile", "import"])
def test_kill_9_midway_leaves_no_partial_rows(llm_env, elfctl, tmp_path, next_command):
    project, store = llm_env
    seed_ledger(store)
    before = totals(store)
    path = tmp_path / "usage.jsonl"
    n = write_usage(path, 60_000)
    proc = start_import(project, path, "--strict")
    deadline = time.monotonic() + 120
    while True:  # until part of it is in the ledger
        got = store.query("SELECT id, rows_recorded FROM usage_imports")
        if got and got[0]["rows_recorded"] >= 3 * import_batches.BATCH:
            break
        assert proc.poll() is None and time.monotonic() < deadline, "the import ended before it could be killed"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    imp_id = got[0]["id"]
    partial = store.query("SELECT COUNT(*) AS n FROM api_usage WHERE import_id = ?", (imp_id,))[0]["n"]
    assert 0 < partial < n  # killed midway: some rows were in
    if next_command == "reconcile":
        d = drift(elfctl, project)
        assert d["imports_undone"] == [imp_id] and d["drift"] == []
        assert totals(store) == before
    else:
        other = tmp_path / "other.jsonl"
        other.write_text(json.dumps({"request_id": "next-1", "ts": "2026-03-01T10:00:00Z", "team": TEAM,
                                     "requested_model": "gpt-4o", "model": "gpt-4o", "cost_nanousd": 7}) + "\n")
        r = elfctl("cost", "import", str(other), "--json", cwd=project)
        assert r.returncode == 0 and json.loads(r.stdout)["imported"] == 1, r.stderr
        after = totals(store)
        assert after["rows"] == before["rows"] + 1 and after["imports"] == 0
        assert drift(elfctl, project)["drift"] == []
    assert store.query("SELECT COUNT(*) AS n FROM api_usage WHERE import_id = ?", (imp_id,))[0]["n"] == 0
    # and the same file imports whole afterwards
    r = elfctl("cost", "import", str(path), "--strict", "--json", cwd=project)
    assert r.returncode == 0 and json.loads(r.stdout)["imported"] == n, r.stderr


def test_no_room_for_the_checked_rows_is_one_clear_error(llm_env, tmp_path):
    """The spool of checked rows hits a file size limit (as a full disk would): exit 1, one line
    naming the folder and the fix, nothing imported."""
    import resource

    project, store = llm_env
    before = totals(store)
    path = tmp_path / "usage.jsonl"
    write_usage(path, 12_000)
    limit = path.stat().st_size // 4  # the input is only read; the spool grows past this

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "elfctl", "cost", "import", str(path), "--strict"], cwd=project,
                          preexec_fn=small_files, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "cannot keep the checked rows in" in proc.stderr and "nothing was imported" in proc.stderr
    assert "TMPDIR" in proc.stderr and "Traceback" not in proc.stderr
    assert totals(store) == before
