"""The HTML report renders in headless Chromium; its figures match the generator's own sums and the
--json views."""

import datetime as dt
import json
import re
import shutil
import subprocess

import pytest
from tests import usage_gen as g
from tests.conftest import unavailable
from tests.html_figures import read

from elfctl.services.cost.html import write_html

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        unavailable("chromium is not installed (apt-get install chromium)")
    return subprocess.run(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chrome'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def populated(project, open_store):
    url = f"sqlite:///{project / '.elf' / 'elf.db'}"
    store = open_store(url)
    plan = g.populate(store, days=60, rows=12_000, now=dt.datetime.now(dt.UTC))
    return store, url, plan


def expected_from_the_generator(plan, today: dt.date) -> dict:
    """The report's figures summed from the generator's own rows (not read back through the code)."""
    start, month = (today - dt.timedelta(days=29)).isoformat(), today.replace(day=1).isoformat()
    # every team's today and month figures are on the page, 0 when it has no rows in them yet (just
    # after midnight; on the 1st just after midnight the whole month is empty)
    want: dict = {f"team.{t.name}.{k}": 0 for t in plan.teams for k in ("today_nanousd", "month_nanousd")}
    want["today.cost_nanousd"] = 0

    def add(name, amount):
        want[name] = want.get(name, 0) + amount

    for day, team, model, calls, _err, _fb, _unpriced, _p, _c, _cached, cost in plan.summary_rows():
        if day == today.isoformat():
            add(f"team.{team}.today_nanousd", cost)
            add("today.cost_nanousd", cost)
        if day >= month:
            add(f"team.{team}.month_nanousd", cost)
        if day >= start:
            add(f"model.{model}.cost_nanousd", cost)
            add(f"model.{model}.calls", calls)
            add("period.cost_nanousd", cost)
            add("period.calls", calls)
    return want


def test_report_renders_in_chromium_and_matches_json(populated, tmp_path, elfctl, project):
    store, url, plan = populated
    out = tmp_path / "report.html"
    data = write_html(store, out)
    text = out.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "the report must not load anything"
    assert "<script" not in text

    proc = chromium(tmp_path, "--dump-dom", out.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = read(proc.stdout)
    assert dom.tags.get("svg", 0) >= 3 and dom.tags.get("rect", 0) > 30  # the charts are there
    figs = dom.figs
    want = expected_from_the_generator(plan, dt.date.fromisoformat(data["dashboard"]["today"]))
    # the last 30 days always hold spend, whatever the hour or the day of the month
    assert sum(v > 0 for k, v in want.items() if k.startswith("model.")) >= 6 and want["period.cost_nanousd"] > 0
    assert {name: int(figs[name][0]) for name in want} == want

    env = {"ELFCTL_STORE_URL": url}
    dash = json.loads(elfctl("cost", "dashboard", "--days", "30", "--json", cwd=project, env=env).stdout)
    pred = json.loads(elfctl("cost", "predict", "--horizon", "month", "--json", cwd=project, env=env).stdout)
    assert dash["period_totals"] == data["dashboard"]["period_totals"]
    from elfctl.services.cost.views import usd

    checked = 0
    for t in dash["teams"]:
        for key in ("today_nanousd", "month_nanousd"):
            value, shown = figs[f"team.{t['team']}.{key}"]
            assert int(value) == t[key] and shown == usd(t[key])
            checked += 1
    for m in dash["models"]:
        value, shown = figs[f"model.{m['model']}.cost_nanousd"]
        assert int(value) == m["cost_nanousd"] and shown == usd(m["cost_nanousd"])
        assert int(figs[f"model.{m['model']}.calls"][0]) == m["calls"]
    assert int(figs["period.calls"][0]) == dash["period_totals"]["calls"]
    assert int(figs["period.cost_nanousd"][0]) == dash["period_totals"]["cost_nanousd"]
    for f in pred["teams"]:
        value = int(figs[f"forecast.{f['team']}.month.p50_nanousd"][0])
        # a few seconds passed between the two runs: today's remaining share moved a little
        assert abs(value - f["month"]["p50_nanousd"]) <= max(1, f["month"]["p50_nanousd"]) * 1e-3
    assert checked >= 12

    shot = tmp_path / "report.png"
    proc = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2400", out.as_uri())
    assert proc.returncode == 0 and shot.stat().st_size > 20_000, proc.stderr[-2000:]


def test_report_for_one_team_and_period(populated, tmp_path):
    store, _, _ = populated
    today = dt.datetime.now(dt.UTC).date()
    since = (today - dt.timedelta(days=6)).isoformat()
    data = write_html(store, tmp_path / "legal.html", team="legal", since=since, until=today.isoformat())
    d = data["dashboard"]
    assert d["team"] == "legal" and [t["team"] for t in d["teams"]] == ["legal"]
    assert len(d["daily"]) == 7 and d["since"] == since
    assert [t["team"] for t in data["forecast"]["teams"]] == ["legal"]
    assert "elfctl cost report: legal" in (tmp_path / "legal.html").read_text()
