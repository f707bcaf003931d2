"""`cost dashboard / predict / optimize` as a user runs them: --json, the human view, --watch in
a real terminal (tmux), exit codes."""

import datetime as dt
import json
import shutil
import sys

import pytest
from tests import usage_gen as g
from tests.conftest import unavailable
from tests.terminal import Terminal, wait_for_file

from elfctl.services.cost.views import usd


@pytest.fixture
def populated(store_url, open_store):
    store = open_store(store_url)
    plan = g.populate(store, days=45, rows=10_000, now=dt.datetime.now(dt.UTC))
    return store, {"ELFCTL_STORE_URL": store_url}, plan


def test_dashboard_json_and_human_view_show_the_same_figures(populated, cli):
    store, env, _ = populated
    res = cli("cost", "dashboard", "--days", "7", "--json", env=env)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    raw = store.query(
        "SELECT team, SUM(cost_nanousd) AS c FROM api_usage WHERE day = ? GROUP BY team", [today]
    )
    assert {t["team"]: t["today_nanousd"] for t in data["teams"] if t["today_nanousd"]} == {
        r["team"]: int(r["c"]) for r in raw
    }
    human = cli("cost", "dashboard", "--days", "7", "--watch", env=env)  # no TTY: one snapshot
    assert human.exit_code == 0
    for t in data["teams"]:
        assert usd(t["month_nanousd"]) in human.stdout
    assert usd(data["period_totals"]["cost_nanousd"]) in human.stdout
    assert "Open breakers: llm:gpt-4o" in human.stdout


def test_predict_and_optimize_json(populated, cli):
    _, env, _ = populated
    res = cli("cost", "predict", "--horizon", "30d", "--team", "marketing", "--json", env=env)
    assert res.exit_code == 0, res.output
    [team] = json.loads(res.stdout)["teams"]
    assert team["team"] == "marketing" and team["horizon_days"] == 30
    assert team["horizon_p10_nanousd"] <= team["horizon_p50_nanousd"] <= team["horizon_p90_nanousd"]
    human = cli("cost", "predict", "--team", "marketing", env=env)
    assert team["model"] in human.stdout
    res = cli("cost", "optimize", "--json", env=env)
    assert res.exit_code == 0
    kinds = {r["kind"] for r in json.loads(res.stdout)["items"]}
    assert {"cheaper_model", "cache_repeats", "budget_low"} <= kinds
    assert "cache repeated identical prompts" in cli("cost", "optimize", env=env).stdout


def test_bad_input_exits_2_with_a_hint(populated, cli):
    _, env, _ = populated
    res = cli("cost", "predict", "--horizon", "fortnight", "--json", env=env)
    assert res.exit_code == 2
    err = json.loads(res.stdout)["error"]
    assert "--horizon" in err["message"] and "7d" in err["hint"]
    res = cli("cost", "dashboard", "--days", "0", env=env)
    assert res.exit_code == 2 and "'--days' / '-d': 0 is not a number from 1 to 366" in res.stderr


def test_unmigrated_store_says_so(cli, project):
    res = cli("cost", "dashboard")
    assert res.exit_code == 1
    assert "elfctl db migrate" in res.stderr and "Traceback" not in res.output


def test_watch_refreshes_in_a_terminal_and_ctrl_c_exits_0(project, open_store, tmp_path):
    if not shutil.which("tmux"):
        unavailable("tmux is not installed (apt-get install tmux)")
    store = open_store(f"sqlite:///{project / '.elf' / 'elf.db'}")
    g.populate(store, days=20, rows=3_000, now=dt.datetime.now(dt.UTC))
    status = tmp_path / "status"
    cmd = (
        f"cd {project} && {sys.executable} -m elfctl cost dashboard --watch --interval 0.3 --days 3; "
        f"echo $? > {status}; sleep 60"
    )
    with Terminal(cmd, width=200, height=80) as term:
        first = term.wait_for("Open breakers")
        today = dt.datetime.now(dt.UTC).date().isoformat()
        before = sum(
            int(r["c"])
            for r in store.query("SELECT cost_nanousd AS c FROM daily_cost_summary WHERE day = ?", [today])
        )
        assert f"today {usd(before)}" in first
        # A new team spends $1234.56 today: the next refresh shows it without a restart.
        store.execute(
            "INSERT INTO daily_cost_summary (day, team, model, calls, cost_nanousd) "
            "VALUES (?, 'newteam', 'gpt-4o', 3, 1234560000000)",
            [today],
        )
        term.wait_for(f"today {usd(before + 1234560000000)}")
        term.wait_for("newteam")
        term.send_keys("C-c")
        assert wait_for_file(status).strip() == "0"
        assert "Traceback" not in term.screen()
