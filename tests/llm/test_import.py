"""`elfctl cost import`: elfctl JSON, LiteLLM_SpendLogs CSV and /spend/logs JSON; idempotent, streaming."""

from __future__ import annotations

import csv
import json

from tests.llm.test_cost_cli import J, rows

SPEND_FIELDS = [
    "request_id",
    "call_type",
    "api_key",
    "spend",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "startTime",
    "endTime",
    "model",
    "model_id",
    "model_group",
    "custom_llm_provider",
    "api_base",
    "user",
    "metadata",
    "cache_hit",
    "cache_key",
    "request_tags",
    "team_id",
    "end_user",
    "requester_ip_address",
    "status",
]


def spend_rows():
    meta = json.dumps({"user_api_key_team_alias": "marketing-team", "user_api_key_alias": "bot"})
    return [
        {
            "request_id": "chatcmpl-1",
            "spend": "0.000123",
            "startTime": "2026-03-01 10:00:00.123+00",
            "model": "gpt-4o",
            "custom_llm_provider": "openai",
            "prompt_tokens": "10",
            "completion_tokens": "5",
            "team_id": "t-123",
            "status": "success",
            "metadata": meta,
        },
        {
            "request_id": "chatcmpl-2",
            "spend": "0.5",
            "startTime": "2026-03-01T11:00:00Z",
            "model": "claude-sonnet-4-5",
            "custom_llm_provider": "anthropic",
            "prompt_tokens": "100",
            "completion_tokens": "50",
            "team_id": "t-9",
            "status": "failure",
            "metadata": "{}",
        },
        {
            "request_id": "chatcmpl-3",
            "spend": "not-a-number",
            "startTime": "2026-03-01T12:00:00Z",
            "model": "gpt-4o",
            "team_id": "t-9",
            "status": "success",
            "metadata": "{}",
        },
    ]


def write_csv(path, data):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SPEND_FIELDS)
        w.writeheader()
        for d in data:
            w.writerow({k: d.get(k, "") for k in SPEND_FIELDS})


def test_spendlogs_csv_idempotent_with_line_numbers(llm_env, cli, tmp_path):
    project, store = llm_env
    path = tmp_path / "spend.csv"
    write_csv(path, spend_rows())
    r = cli("cost", "import", str(path), "--json")
    assert r.exit_code == 0, r.output
    d = J(r)
    assert d["format"] == "spendlogs-csv" and d["imported"] == 2 and d["bad_count"] == 1
    assert d["bad"][0]["line"] == 4 and "line 4" in r.stderr
    got = {x["request_id"]: x for x in store.query("SELECT * FROM api_usage")}
    assert got["chatcmpl-1"]["team"] == "marketing-team" and got["chatcmpl-1"]["cost_nanousd"] == 123000
    assert got["chatcmpl-2"]["team"] == "t-9" and got["chatcmpl-2"]["outcome"] == "error"
    assert got["chatcmpl-1"]["ts"].startswith("2026-03-01T10:00:00.123")
    again = J(cli("cost", "import", str(path), "--json"))
    assert again["imported"] == 0 and again["duplicates"] == 2
    assert store.query("SELECT SUM(calls) AS n FROM daily_cost_summary")[0]["n"] == 2
    r = cli("cost", "import", str(path), "--strict")
    assert r.exit_code == 2 and "line 4" in r.stderr


def test_strict_imports_nothing_on_a_bad_row(llm_env, cli, tmp_path):
    project, store = llm_env
    path = tmp_path / "spend.csv"
    write_csv(path, spend_rows())
    assert cli("cost", "import", str(path), "--strict").exit_code == 2
    assert store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"] == 0
    assert store.query("SELECT COUNT(*) AS n FROM daily_cost_summary")[0]["n"] == 0


def test_spend_logs_json_endpoint_format(llm_env, cli, tmp_path):
    project, store = llm_env
    data = spend_rows()[:2]
    for d in data:  # the endpoint returns numbers and metadata as an object
        d["spend"] = float(d["spend"])
        d["metadata"] = json.loads(d["metadata"])
    path = tmp_path / "logs.json"
    path.write_text(json.dumps(data, indent=2))
    d = J(cli("cost", "import", str(path), "--json"))
    assert d["format"] == "spendlogs-json" and d["imported"] == 2 and d["bad_count"] == 0
    assert {r["team"] for r in store.query("SELECT team FROM api_usage")} == {"marketing-team", "t-9"}


def test_elfctl_json_round_trip_and_bad_json_line(llm_env, cli, tmp_path):
    from elfctl.services.cost import ledger

    project, store = llm_env
    ledger.record(store, rows(5))
    export = cli("cost", "report", "--by", "request", "--json")
    items = J(export)["rows"]
    assert len(items) == 5
    store.execute("DELETE FROM api_usage")
    store.execute("DELETE FROM daily_cost_summary")
    store.execute("DELETE FROM spend_counters")
    path = tmp_path / "usage.json"
    items[2]["prompt_tokens"] = "ten"
    path.write_text(json.dumps(items, indent=1))
    d = J(cli("cost", "import", str(path), "--json"))
    assert d["format"] == "elfctl" and d["imported"] == 4 and d["bad_count"] == 1
    assert d["bad"][0]["line"] > 1 and "prompt_tokens" in d["bad"][0]["error"]
    assert cli("cost", "reconcile").exit_code == 0
    # The report's own --json output, as written, imports as it is (idempotently).
    path.write_text(export.stdout)
    d = J(cli("cost", "import", str(path), "--json"))
    assert d["format"] == "elfctl" and d["imported"] == 1 and d["duplicates"] == 4 and d["bad_count"] == 0


def test_large_file_streams_in_batches(llm_env, cli, tmp_path):
    project, store = llm_env
    path = tmp_path / "big.jsonl"
    n = 5000
    with open(path, "w") as f:
        for r in rows(n):
            f.write(json.dumps(r.to_dict()) + "\n")
    r = cli("cost", "import", str(path), "--json")
    d = J(r)
    assert d["imported"] == n and "rows read" in r.stderr  # progress on stderr per batch
    assert store.query("SELECT calls FROM daily_cost_summary")[0]["calls"] == n
