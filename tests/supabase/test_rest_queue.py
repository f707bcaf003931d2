"""The queue_request strategy's queue and the usage spool's replay with only SUPABASE_URL and
SUPABASE_KEY set: `elfctl queue list / drain / drop` over REST (migration 0140's elfctl_queue_put,
_claim and _done; reads through `select`), a call queued while the provider is down replayed once and
in the ledger once, a drainer killed mid-run, two drainers at once, the bound under concurrent
enqueuers, and a spooled call replayed by a command over REST. Checked in the database directly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from elfctl.adapters.supabase_rest import RestStore
from elfctl.services.resilience import queue
from tests.conftest import run_elfctl
from tests.llm.conftest import FAST
from tests.llm.test_calls import _team
from tests.supabase.test_rest_export import _server

TEAM_CODE = '''
import os, pathlib, time
from elfctl import llm
from elfctl.resilience import fallback


@fallback("llm-provider", ["queue_request"], team="alpha")
def ask(prompt):
    """A team's call: queued while the provider fails, replayed by `elfctl queue drain`."""
    resp = llm.completion(team="alpha", messages=[{"role": "user", "content": prompt}],
                          api_base=os.environ["TEST_LLM_URL"], max_tokens=20)
    return resp.choices[0].message.content


def job(n):
    """Appends its argument to a log (one line per run); hangs on `hang` while hang.flag exists."""
    with open("runs.log", "a") as f:
        f.write(f"{n}\\n")
    if n == "hang" and pathlib.Path("hang.flag").exists():
        pathlib.Path("hang.flag").unlink()
        time.sleep(600)
'''


@pytest.fixture
def team_project(project, monkeypatch, llm_server):
    with open(project / "elfctl.toml", "a") as f:
        f.write(FAST)
    _team(project, fallbacks=())
    (project / "teamq.py").write_text(TEAM_CODE)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-" + os.urandom(4).hex())
    return project


def _env(rest, **extra) -> dict:
    return {"SUPABASE_URL": rest.url, "SUPABASE_KEY": rest.service_key, "ELFCTL_STORE_URL": "", **extra}


def _cli(project, env, *args):
    res = run_elfctl(*args, cwd=project, env=env)
    assert "SUPABASE_DB_URL" not in res.stdout + res.stderr, res.stdout + res.stderr
    return res


def _put(store, n: int, resource="jobs", target="teamq:job", limit=1000) -> list[str]:
    return [queue.enqueue(store, resource, target, json.dumps({"args": [f"r{i}"], "kwargs": {}}), limit=limit)
            for i in range(n)]


def _runs(project) -> list[str]:
    log = project / "runs.log"
    return log.read_text().splitlines() if log.exists() else []


def test_a_call_queued_while_the_provider_is_down_lands_once_in_the_ledger(rest, db, team_project, llm_server,
                                                                           supa_pg_url):
    env = _env(rest, TEST_LLM_URL=llm_server.url)
    llm_server.fail("gpt-4o", status=500)
    team = subprocess.run([sys.executable, "-c", "import teamq; print(teamq.ask('hello queue').queued)"],
                          cwd=team_project, env={**os.environ, **env}, capture_output=True, text=True, timeout=180)
    assert team.returncode == 0, team.stderr[-2000:]
    entry = team.stdout.strip().splitlines()[-1]
    listed = json.loads(_cli(team_project, env, "queue", "list", "--json").stdout)
    direct = json.loads(_cli(team_project, {"ELFCTL_STORE_URL": supa_pg_url}, "queue", "list", "--json").stdout)
    assert listed == direct and [(e["id"], e["state"], e["target"]) for e in listed] == [(entry, "queued", "teamq:ask")]

    llm_server.reset()
    llm_server.answer("*", prompt=10, completion=5)
    res = _cli(team_project, env, "queue", "drain", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert [(d["id"], d["result"]) for d in json.loads(res.stdout)] == [(entry, "ok")]
    assert _cli(team_project, env, "queue", "drain", "--json").stdout.strip() == "[]"  # nothing left to run
    _cli(team_project, env, "cost", "report", "--json")  # replays the spool, if the drainer exited first
    ok = db.query("SELECT team, model FROM api_usage WHERE outcome = 'ok'")
    assert ok == [{"team": "alpha", "model": "openai/gpt-4o"}] and llm_server.calls("gpt-4o") == 1
    assert db.query("SELECT COUNT(*) AS n FROM resilience_queue")[0]["n"] == 0
    assert queue.pending(db, "llm-provider") == 0
    trail = db.query("SELECT result FROM platform_actions WHERE target = ? ORDER BY ts, id", (entry,))
    assert [r["result"] for r in trail] == ["queued", "ok"]


def test_a_drainer_killed_mid_run_over_rest_runs_nothing_twice(rest, db, team_project):
    ids = [queue.enqueue(db, "jobs", "teamq:job", json.dumps({"args": [n], "kwargs": {}}), limit=10)
           for n in ("first", "hang", "last")]
    (team_project / "hang.flag").write_text("")
    code = ("import os; from elfctl.adapters.supabase_rest import RestStore; from elfctl.services.resilience import queue;"
            "queue.drain(RestStore(os.environ['SUPABASE_URL'], os.environ['SUPABASE_KEY']), 'test', claim_s=120)")
    drainer = subprocess.Popen([sys.executable, "-c", code], cwd=team_project, env={**os.environ, **_env(rest)})
    try:
        end = time.monotonic() + 60
        while _runs(team_project) != ["first", "hang"]:  # the moment: the second call is running
            assert time.monotonic() < end and drainer.poll() is None, "the drainer never reached the second call"
            time.sleep(0.02)
    finally:
        drainer.send_signal(signal.SIGKILL)
        drainer.wait()
    res = _cli(team_project, _env(rest), "queue", "drain", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert [(d["id"], d["result"]) for d in json.loads(res.stdout)] == [(ids[2], "ok")]
    assert _runs(team_project) == ["first", "hang", "last"]  # the done one not again, the claimed one not yet
    listed = json.loads(_cli(team_project, _env(rest), "queue", "list", "--json").stdout)
    assert [(e["id"], e["state"]) for e in listed] == [(ids[1], "running")]
    # its claim over (as 120 s later): the next drain runs it, once
    db.execute("UPDATE resilience_queue SET claimed_until = '2000-01-01T00:00:00.000+00:00'")
    res = _cli(team_project, _env(rest), "queue", "drain", "--json")
    assert [(d["id"], d["result"]) for d in json.loads(res.stdout)] == [(ids[1], "ok")]
    assert _runs(team_project) == ["first", "hang", "last", "hang"]
    assert queue.pending(db, "jobs") == 0 and db.query("SELECT id FROM resilience_queue") == []
    results = [r["result"] for r in db.query("SELECT result FROM platform_actions WHERE strategy = 'queue_request' "
                                             "AND trigger = 'queue drain' ORDER BY ts, id")]
    assert results == ["ok", "ok", "ok"]


def test_two_drainers_at_once_over_rest_run_each_call_once(rest, db, team_project):
    _put(db, 30)
    procs = [subprocess.Popen([sys.executable, "-m", "elfctl", "queue", "drain", "--json"], cwd=team_project,
                              env={**os.environ, **_env(rest)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    ran = [d["id"] for out, _ in outs for d in json.loads(out) if d["result"] == "ok"]
    assert len(ran) == 30 and len(set(ran)) == 30
    assert sorted(_runs(team_project)) == sorted(f"r{i}" for i in range(30))  # each call ran once
    assert queue.pending(db, "jobs") == 0


def test_the_bound_holds_under_concurrent_enqueuers_over_rest(rest, db):
    from elfctl.errors import InputError

    stores = [RestStore(rest.url, rest.service_key) for _ in range(12)]
    got: list = []

    def one(store):
        try:
            got.append(_put(store, 1, limit=5)[0])
        except queue.QueueFull as exc:
            got.append(exc)

    threads = [threading.Thread(target=one, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    queued = [g for g in got if isinstance(g, str)]
    assert len(queued) == 5 and sum(isinstance(g, queue.QueueFull) for g in got) == 7
    assert queue.pending(db, "jobs") == 5 and {e.id for e in queue.listing(db)} == set(queued)
    assert db.query("SELECT COUNT(*) AS n FROM platform_actions WHERE result = 'queued'")[0]["n"] == 5
    with pytest.raises(InputError):
        queue.enqueue(db, "jobs", "not a target", "{}", limit=5)


def test_queue_drop_over_rest(rest, db, team_project, supa_pg_url):
    a, b = _put(db, 2, resource="mail")
    c = _put(db, 1, resource="jobs")[0]
    env = _env(rest)
    res = _cli(team_project, env, "queue", "drop", "nope", "--json")
    assert res.returncode == 2 and json.loads(res.stdout)["error"]["code"] == "not_found"
    assert len(queue.listing(db)) == 3  # nothing changed
    res = _cli(team_project, env, "queue", "drop", a, "--json")
    assert res.returncode == 0 and [e["id"] for e in json.loads(res.stdout)] == [a]
    res = _cli(team_project, env, "queue", "drop", "--resource", "jobs", "--json")
    assert [e["id"] for e in json.loads(res.stdout)] == [c]
    assert [e.id for e in queue.listing(db)] == [b]
    assert (queue.pending(db, "mail"), queue.pending(db, "jobs")) == (1, 0)
    assert db.query("SELECT COUNT(*) AS n FROM platform_actions WHERE result = 'dropped'")[0]["n"] == 2


def test_drop_all_reads_past_max_rows(supa_pg_url, db):
    """A REST read returns at most max-rows (250 here): `drop --all` pages until none is left."""
    server = _server(supa_pg_url, 250)
    store = RestStore(server.url, server.service_key)
    try:
        _put(db, 600, resource="bulk", limit=1000)
        assert len(queue.listing(store, limit=10_000)) == 250  # the cap
        dropped = queue.drop(store, "test")
        assert len(dropped) == 600 and len({e.id for e in dropped}) == 600
        assert db.query("SELECT COUNT(*) AS n FROM resilience_queue")[0]["n"] == 0 and queue.pending(db, "bulk") == 0
    finally:
        store.close()
        server.stop()


SPOOL_KILLER = """
import os, signal, sys
from elfctl.services.cost import ledger
def die(*a, **k):  # the provider answered and the row is spooled: die before the store commit
    os.kill(os.getpid(), signal.SIGKILL)
ledger.record = die
from elfctl import llm
llm.completion(team="alpha", messages=[{"role": "user", "content": "hello"}], api_base=sys.argv[1],
               max_tokens=50, request_id="spooled-over-rest")
"""


def test_a_spooled_call_is_replayed_over_rest_once(rest, db, team_project, llm_server):
    """The usage spool's replay with only the REST keys: a process killed between the provider's
    answer and the ledger's commit leaves the call in its spool; the next command records it, once."""
    env = _env(rest)
    proc = subprocess.run([sys.executable, "-c", SPOOL_KILLER, llm_server.url], cwd=team_project,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=180)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert db.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"] == 0
    for _ in range(2):
        res = _cli(team_project, env, "cost", "report", "--json")
        assert res.returncode == 0, res.stdout + res.stderr
        assert json.loads(res.stdout)["total"]["calls"] == 1
    rows = db.query("SELECT request_id, team FROM api_usage")
    assert rows == [{"request_id": "spooled-over-rest", "team": "alpha"}]
    assert db.query("SELECT COUNT(*) AS n FROM budget_reservations")[0]["n"] == 0


def test_fallback_steps_are_audited_over_rest(rest_store, db, project):
    """@fallback's own steps (a retry here) reach the actions trail over REST too (no transaction there:
    one elfctl_record_action call each); before, they were dropped with a warning."""
    from elfctl import config, resilience

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("relay down")
        return "sent"

    resilience.reset()
    resilience.use_store(rest_store, config.load(cwd=project))
    try:
        out = resilience.fallback("mail", ["retry"], policy="quick")(flaky)()
    finally:
        resilience.reset()
    assert out.served_by == "retry" and out.value == "sent"
    assert db.query("SELECT resource, strategy, result FROM platform_actions") == [
        {"resource": "mail", "strategy": "retry", "result": "ok"}]
