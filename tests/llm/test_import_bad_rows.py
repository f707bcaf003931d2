"""`cost import` reads every row: good rows land, each bad one is reported by line and field, and a
file with no good row fails (exit 2). On SQLite and Postgres (llm_env's store_url)."""

from __future__ import annotations

import csv
import json

from tests.llm.test_cost_cli import J
from tests.llm.test_import import SPEND_FIELDS, spend_rows


def good(i: int, **over) -> dict:
    row = {"request_id": f"r-{i}", "ts": "2026-03-01T10:00:00Z", "team": "alpha", "requested_model": "m",
           "model": "m", "prompt_tokens": 3, "cost_nanousd": 1000}
    return {**row, **over}


BAD = [  # (row, what the report must say)
    (good(9001, ts="yesterday"), "ts 'yesterday' is not an ISO-8601 time"),
    (good(9002, cost_nanousd=10**20), "cost_nanousd 100000000000000000000 is not in 0..100,000,000,000,000"),
    (good(9003, team={"name": "alpha"}), "team must be text, got dict"),
    (good(9004, cost_nanousd=-5_000_000_000), "cost_nanousd -5000000000 is not in 0.."),
    (good(9005, completion_tokens=-1), "completion_tokens -1 is not in 0.."),
    (good(9006, team="téam-😀"), "team 'téam-😀' is not a team name"),
    (good(9007, ts="9999-12-31T23:59:59-01:00"), "ts '9999-12-31T23:59:59-01:00' is not an ISO-8601 time"),
]


def test_every_row_is_read_and_every_bad_one_reported(llm_env, cli, tmp_path):
    project, store = llm_env
    lines = [json.dumps(good(i)) for i in range(3000)]
    lines[2500] = '{"request_id": "cut-off", '  # one unreadable line at 2,501
    lines += [json.dumps(row, ensure_ascii=False) for row, _ in BAD]
    data = ("\n".join(lines) + "\n").encode() + json.dumps(good(9100, model="m-\udcff"), ensure_ascii=False).encode(
        "utf-8", "surrogateescape") + b"\n"
    path = tmp_path / "usage.jsonl"
    path.write_bytes(data)
    r = cli("cost", "import", str(path), "--json")
    assert r.exit_code == 0, r.output
    d = J(r)
    assert d["imported"] == 2999 and d["bad_count"] == 1 + len(BAD) + 1
    errors = {b["line"]: b["error"] for b in d["bad"]}
    assert errors[2501].startswith("line 2501: not valid JSON")
    for n, (_, says) in enumerate(BAD, start=3001):
        assert says in errors[n], (n, errors[n])
    assert errors[3001 + len(BAD)] == f"line {3001 + len(BAD)}: model is not valid UTF-8"
    assert store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"] == 2999
    total = store.query("SELECT SUM(cost_nanousd) AS s FROM api_usage")[0]["s"]
    assert total == 2999 * 1000  # no negative or absurd cost reached the ledger


def test_a_file_of_bad_rows_fails_and_imports_nothing(llm_env, cli, tmp_path):
    project, store = llm_env
    path = tmp_path / "usage.jsonl"
    path.write_text("".join(json.dumps({k: v for k, v in good(i).items() if k != "requested_model"}) + "\n"
                            for i in range(5)))
    r = cli("cost", "import", str(path), "--json")
    assert r.exit_code == 2
    err = J(r)["error"]
    assert err["message"] == f"{path}: no row imported, all 5 are bad (first: line 1: missing requested_model)"
    assert "requested_model" in err["hint"] and store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"] == 0


def test_csv_bad_rows_by_line_and_field(llm_env, cli, tmp_path):
    project, store = llm_env
    rows = spend_rows()[:2]
    huge = dict(rows[0], request_id="huge", metadata="x" * (200 * 1024))
    negative = dict(rows[0], request_id="neg", spend="-5")
    bad_team = dict(rows[1], request_id="team", team_id="Not A Team")
    path = tmp_path / "spend.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SPEND_FIELDS)
        w.writeheader()
        for d in (huge, rows[0], negative, bad_team, rows[1]):
            w.writerow({k: d.get(k, "") for k in SPEND_FIELDS})
    with open(path, "ab") as f:  # a row with a byte that is not UTF-8 in its model
        f.write(b"bad-utf8,,,0.1,,1,1,2026-03-01T10:00:00Z,,gpt-\xff,,,,,,{},,,,t-1,,,success\n")
    d = J(cli("cost", "import", str(path), "--json"))
    assert d["imported"] == 2 and d["bad_count"] == 4
    errors = [b["error"] for b in d["bad"]]
    assert errors == [
        "line 2: metadata is larger than 128 KiB",
        "line 4: cost_nanousd -5000000000 is not in 0..100,000,000,000,000",
        "line 5: team 'Not A Team' is not a team name (a DNS-1123 label: a-z, 0-9 and '-', at most 63)",
        "line 7: requested_model is not valid UTF-8",
    ]


def test_a_huge_row_and_a_broken_one_leave_the_rest_readable(llm_env, cli, tmp_path):
    project, store = llm_env
    lines = [json.dumps(good(1)), json.dumps(good(2, agent="x" * (200 * 1024))), json.dumps(good(3)),
             json.dumps(good(4)).replace('"r-4"', "r-4"), json.dumps(good(5))]
    path = tmp_path / "usage.jsonl"
    path.write_text("\n".join(lines) + "\n")
    d = J(cli("cost", "import", str(path), "--json"))
    assert d["imported"] == 3 and [b["error"] for b in d["bad"]] == [
        "line 2: the row is larger than 128 KiB", "line 4: not valid JSON (Expecting value)"]
    # In a JSON list, a broken item is skipped to the next line and the items after it still count.
    many = [good(i) for i in range(6, 3000)]  # larger than the read buffer: the error is found where it is
    items = json.dumps(many, indent=1).replace('"request_id": "r-7"', '"request_id": r-7')
    path = tmp_path / "usage.json"
    path.write_text(items)
    d = J(cli("cost", "import", str(path), "--json", "--format", "elfctl"))
    assert d["imported"] >= 2990 and d["bad"][0]["error"].endswith("not valid JSON (Expecting value)")
    assert {r["request_id"] for r in store.query("SELECT request_id FROM api_usage")} >= {"r-6", "r-8"}



def test_a_run_that_fails_midway_says_what_it_committed(project, tmp_path):
    """A real lock taken by another connection after the first batch: the second batch fails after
    the busy timeout, and the error says how many rows the first one committed."""
    import sqlite3

    import pytest

    from elfctl import config
    from elfctl.bootstrap import migrations_dir, open_store
    from elfctl.errors import OperationFailed
    from elfctl.services.cost import usage_import
    from elfctl.services.platform import migrate

    cfg = config.load(cwd=project, environ={"ELFCTL_STORE_BUSY_TIMEOUT_MS": "100"})
    store = open_store(cfg)
    migrate.migrate(store, migrations_dir(cfg))
    path = tmp_path / "usage.jsonl"
    path.write_text("".join(json.dumps(good(i)) + "\n" for i in range(usage_import.BATCH + 10)))
    other = sqlite3.connect(project / ".elf" / "elf.db", isolation_level=None)

    def take_the_lock(n):
        other.execute("BEGIN IMMEDIATE")

    try:
        with pytest.raises(OperationFailed) as err:
            usage_import.import_file(store, path, progress=take_the_lock)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert err.value.code == "store_locked"
    assert "another process holds the store's write lock" in err.value.message
    assert err.value.message.endswith(f"(the import stopped after reading {usage_import.BATCH + 10:,} rows; "
                                      f"{usage_import.BATCH:,} were imported before it, and importing again skips them)")
    assert store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"] == usage_import.BATCH
    store.close()
