"""`elfctl cost ...` and `elfctl llm test` through the CLI, on SQLite and Postgres."""

from __future__ import annotations

import json

from elfctl.domain.usage import UsageRow
from elfctl.services.cost import ledger
from tests.llm.test_calls import MSG, _team


def J(result):
    return json.loads(result.stdout)


def rows(n, team="alpha", model="openai/gpt-4o", day="2026-03-01", cost=1000, start=0):
    return [
        UsageRow(
            request_id=f"{team}-{day}-{start + i}",
            ts=f"{day}T10:00:{i % 60:02d}.000+00:00",
            team=team,
            requested_model=model,
            model=model,
            prompt_tokens=10,
            completion_tokens=5,
            cost_nanousd=cost,
        )
        for i in range(n)
    ]


def test_budget_set_list_show(llm_env, cli):
    project, store = llm_env
    r = cli(
        "cost",
        "budget",
        "set",
        "alpha",
        "--daily",
        "5",
        "--monthly",
        "100",
        "--action",
        "downgrade",
        "--json",
    )
    assert r.exit_code == 0, r.output
    d = J(r)
    assert d["budget"]["daily_nanousd"] == 5_000_000_000 and d["budget"]["hard_action"] == "downgrade"
    assert {w["window"] for w in d["windows"]} == {"day", "month"}
    assert all(w["resets_at"] for w in d["windows"])
    assert J(cli("cost", "budget", "list", "--json"))[0]["team"] == "alpha"
    r = cli("cost", "budget", "show", "alpha")
    assert r.exit_code == 0 and "$5.00" in r.stdout and "$100.00" in r.stdout
    bad = cli("cost", "budget", "set", "alpha", "--daily", "5", "--action", "explode")
    assert bad.exit_code == 2 and "explode" in bad.stderr
    bad = cli("cost", "budget", "set", "Not_A_Team", "--daily", "5")
    assert bad.exit_code == 2 and "DNS-1123" in bad.stderr


def test_report_by_model_day_csv_and_unpriced_alert(llm_env, cli):
    project, store = llm_env
    ledger.record(store, rows(3) + rows(2, model="openai/gpt-4o-mini", day="2026-03-02", cost=7))
    ledger.record(
        store,
        [
            UsageRow(
                request_id="u1",
                ts="2026-03-02T00:00:00.000+00:00",
                team="alpha",
                requested_model="x/y",
                model="x/y",
                priced=False,
            )
        ],
    )
    d = J(cli("cost", "report", "--by", "model", "--json"))
    assert [(r["key"], r["calls"], r["cost_nanousd"]) for r in d["rows"]] == [
        ("openai/gpt-4o", 3, 3000),
        ("openai/gpt-4o-mini", 2, 14),
        ("x/y", 1, 0),
    ]
    assert d["total"]["cost_nanousd"] == 3014 and d["alerts"] and "no price" in d["alerts"][0]
    d = J(cli("cost", "report", "--by", "day", "--since", "2026-03-02", "--json"))
    assert [r["key"] for r in d["rows"]] == ["2026-03-02"]
    r = cli("cost", "report", "--by", "team", "--csv")
    assert r.stdout.splitlines()[0].startswith("key,calls") and "alpha,6" in r.stdout
    assert cli("cost", "report", "--since", "yesterday").exit_code == 2


def test_report_html_writes_a_file_with_the_hand_computed_figures(llm_env, cli, tmp_path):
    """`cost report --html` renders a real file; its figures are worked out by hand here."""
    import datetime as dt

    from tests.html_figures import read

    project, store = llm_env
    today = dt.datetime.now(dt.UTC).date()
    yesterday = today - dt.timedelta(days=1)
    error = UsageRow(request_id="beta-err", ts=f"{today}T00:00:01.000+00:00", team="beta",
                     requested_model="openai/gpt-4o-mini", model="openai/gpt-4o-mini", outcome="error")
    ledger.record(store, rows(3, day=today.isoformat(), cost=1_250_000_000)  # alpha: 3 x $1.25
                  + rows(2, team="beta", model="openai/gpt-4o-mini", day=today.isoformat(), cost=40_000_000)
                  + [error]  # beta: 2 x $0.04 and one failed call at $0
                  + rows(1, day=yesterday.isoformat(), cost=100_000_000_000, start=50))  # before --since
    assert cli("cost", "budget", "set", "alpha", "--daily", "5").exit_code == 0
    out = tmp_path / "r.html"
    r = cli("cost", "report", "--since", today.isoformat(), "--html", str(out))
    assert r.exit_code == 0, r.output
    assert f"wrote {out}" in r.stderr
    page = read(out)
    f = {name: tuple(v) for name, v in page.figs.items()}
    # today: alpha 3 x 1,250,000,000 = 3,750,000,000; beta 2 x 40,000,000 = 80,000,000
    assert f["team.alpha.today_nanousd"] == ("3750000000", "$3.75")
    assert f["team.beta.today_nanousd"] == ("80000000", "$0.08")
    # this month: yesterday's $100 counts too, unless today is the 1st
    alpha_month = 3_750_000_000 + (100_000_000_000 if yesterday.month == today.month else 0)
    assert f["team.alpha.month_nanousd"] == (str(alpha_month), f"${alpha_month / 1e9:,.2f}")
    # the period is today only: 3,750,000,000 + 80,000,000 = 3,830,000,000 over 3 + 3 = 6 calls
    assert f["period.cost_nanousd"] == ("3830000000", "$3.83")
    assert f["today.cost_nanousd"] == ("3830000000", "$3.83")
    assert f["period.calls"] == ("6", "6")
    assert f["period.error_rate"] == ("0.166667", "16.7%")  # 1 failed call of 6
    assert f["model.openai/gpt-4o.cost_nanousd"] == ("3750000000", "$3.75")
    assert f["model.openai/gpt-4o.calls"] == ("3", "3")
    assert f["model.openai/gpt-4o-mini.cost_nanousd"] == ("80000000", "$0.08")
    assert f["model.openai/gpt-4o-mini.calls"] == ("3", "3")
    assert "75% of budget" in page.labels  # alpha: $3.75 of its $5 daily budget
    assert "elfctl cost report" in out.read_text() and "<script" not in out.read_text()


def test_check_ok_soft_over(llm_env, cli):
    import datetime as dt

    project, store = llm_env
    cli("cost", "budget", "set", "alpha", "--daily", "0.000010", "--soft", "0.5")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    r = cli("cost", "check", "--team", "alpha")
    assert r.exit_code == 0 and "under budget" in r.stdout
    ledger.record(store, rows(6, day=today, cost=1000))
    r = cli("cost", "check", "--team", "alpha", "--json")
    assert r.exit_code == 0 and J(r)["status"] == "soft" and "soft limit" in r.stderr
    ledger.record(store, rows(5, day=today, cost=1000, start=100))
    r = cli("cost", "check", "--team", "alpha", "--json")
    assert r.exit_code == 1 and J(r)["error"]["code"] == "budget_exceeded" and "over budget" in r.stderr
    r = cli("cost", "check", "--team", "beta", "--max-usd", "1")
    assert r.exit_code == 0
    assert cli("cost", "check", "--team", "beta").exit_code == 2  # no budget at all


def test_reconcile_reports_drift_and_fixes_it(llm_env, cli):
    project, store = llm_env
    ledger.record(store, rows(4))
    r = cli("cost", "reconcile", "--json")
    assert r.exit_code == 0 and J(r)["drift"] == [] and J(r)["rows_checked"] == 4
    store.execute("UPDATE daily_cost_summary SET cost_nanousd = cost_nanousd + 1")
    store.execute("UPDATE spend_counters SET spent_nanousd = 0")
    r = cli("cost", "reconcile", "--json")
    assert r.exit_code == 1
    tables = {d["table"] for d in J(r)["drift"]}
    assert tables == {"daily_cost_summary", "spend_counters"}
    assert cli("cost", "reconcile", "--fix").exit_code == 0
    assert cli("cost", "reconcile").exit_code == 0


def test_reprice_applies_a_price_correction(llm_env, cli, llm_server):
    from elfctl import llm

    project, store = llm_env
    _team(project, model="openai/house-model", fallbacks=())
    llm_server.answer("house-model", prompt=100, completion=10)
    llm.completion(team="alpha", messages=MSG, api_base=llm_server.url)
    llm.flush()
    assert store.query("SELECT priced FROM api_usage")[0]["priced"] == 0
    (project / "prices.yaml").write_text(
        "openai/house-model:\n  input_cost_per_token: 1.0e-06\n  output_cost_per_token: 3.0e-06\n"
    )
    day = store.query("SELECT day FROM api_usage")[0]["day"]
    r = cli("cost", "reprice", "--since", day, "--json")
    assert r.exit_code == 0, r.output
    assert J(r)["rows_changed"] == 1 and J(r)["delta_nanousd"] == 100 * 1000 + 10 * 3000
    row = store.query("SELECT cost_nanousd, priced, price_version FROM api_usage")[0]
    assert row["cost_nanousd"] == 130000 and row["priced"] == 1 and "+local:" in row["price_version"]
    s = store.query("SELECT cost_nanousd, unpriced FROM daily_cost_summary")[0]
    assert s["cost_nanousd"] == 130000 and s["unpriced"] == 0
    assert cli("cost", "reconcile").exit_code == 0
    assert J(cli("cost", "reprice", "--since", day, "--json"))["rows_changed"] == 0


def test_llm_test_command(llm_env, cli, llm_server):
    project, store = llm_env
    cli("cost", "budget", "set", "alpha", "--daily", "1")
    llm_server.answer("gpt-4o-mini", prompt=12, completion=3)
    r = cli(
        "llm",
        "test",
        "--team",
        "alpha",
        "--model",
        "openai/gpt-4o-mini",
        "--api-base",
        llm_server.url,
        "--json",
    )
    assert r.exit_code == 0, r.output
    d = J(r)
    assert (
        d["model"] == "openai/gpt-4o-mini"
        and d["prompt_tokens"] == 12
        and d["cost_nanousd"] == 12 * 150 + 3 * 600
    )
    assert d["budget_remaining_nanousd"]["day"] == 1_000_000_000 - d["cost_nanousd"]
    r = cli("llm", "test", "--team", "alpha", "--model", "openai/gpt-4o-mini", "--api-base", llm_server.url)
    assert "budget left: day $0.99" in r.stdout


def test_health_warns_about_open_circuits(llm_env, cli):
    project, store = llm_env
    r = cli("health", "--json")
    assert J(r)["checks"]["llm"][0]["status"] == "pass"
    store.execute(
        "INSERT INTO breaker_state (name, state, fail_counter, opened_at, updated_at) "
        "VALUES ('llm:openai/gpt-4o', 'open', 5, '2026-03-01T00:00:00.000+00:00', 'x')"
    )
    r = cli("health", "--json")
    llm = J(r)["checks"]["llm"][0]
    assert llm["status"] == "warn" and "openai/gpt-4o open" in llm["output"] and r.exit_code == 0
