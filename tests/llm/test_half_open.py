"""Half-open admits one probe across processes, on SQLite and Postgres: when an open circuit's reset
time has passed, of 8 processes calling at once exactly one reaches the provider (counted by the
test server); the others see the circuit still open and fall back. A probe killed mid-call (kill -9)
frees its slot once the model's time budget has passed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

from tests.llm.test_calls import MSG, _team, usage

MODEL = "openai/gpt-4o"
NAME = f"llm:{MODEL}"

# One launcher imports litellm and makes one bare call (litellm's lazy first-call imports) before it
# forks the workers: each then builds its own runtime (its own store connection) and waits on a pipe,
# so all of them call within milliseconds of each other.
LAUNCHER = textwrap.dedent("""
    import json, os, sys, time
    from elfctl.adapters import litellm_client
    procs, url = int(sys.argv[1]), sys.argv[2]
    litellm_client.complete("openai/warm-up", {"messages": [{"role": "user", "content": "x"}],
                                               "api_base": url, "api_key": "sk-x", "max_retries": 0})
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    kids = []
    for _ in range(procs):
        pid = os.fork()
        if pid == 0:
            for fd in (ready_r, go_w, out_r):
                os.close(fd)
            from elfctl import llm
            rt = llm.runtime()
            rt.policy("alpha", None)
            rt.caller._attempt_fn("openai/gpt-4o", False)  # the breaker's row and connection
            os.write(ready_w, b"r")
            os.read(go_r, 1)  # returns when the launcher closes its end: every worker at once
            t0 = time.monotonic()
            resp = llm.completion(team="alpha", messages=[{"role": "user", "content": "hello"}],
                                  api_base=url, max_tokens=5)
            info = resp._hidden_params["elfctl"]
            llm.flush()
            os.write(out_w, (json.dumps({"model": info["model"], "reason": info["fallback_reason"],
                                         "took": time.monotonic() - t0}) + "\\n").encode())
            os._exit(0)
        kids.append(pid)
    for fd in (ready_w, go_r, out_w):
        os.close(fd)
    got = 0
    while got < procs:
        got += len(os.read(ready_r, procs))
    os.close(go_w)
    codes = [os.waitpid(p, 0)[1] for p in kids]
    res = [json.loads(x) for x in os.fdopen(out_r).read().splitlines()]
    print(json.dumps({"results": res, "codes": codes}))
""")

# One process whose call is the probe (after a bare call: litellm's lazy first-call imports would
# otherwise run between taking the slot and sending the request); the test kills it mid-call.
PROBE = textwrap.dedent("""
    import sys
    from elfctl import llm
    from elfctl.adapters import litellm_client
    litellm_client.complete("openai/warm-up", {"messages": [{"role": "user", "content": "x"}],
                                               "api_base": sys.argv[1], "api_key": "sk-x", "max_retries": 0})
    llm.completion(team="alpha", messages=[{"role": "user", "content": "hello"}], api_base=sys.argv[1],
                   max_tokens=5)
""")


# The compare-and-swap alone: 8 processes, each with its own store connection, try to take the slot
# at the same moment (none reads first), so only the conditional UPDATE can keep it to one.
TAKERS = textwrap.dedent("""
    import json, os, sys
    from elfctl import config
    from elfctl.bootstrap import open_store
    from elfctl.resilience.breaker import StoreBreakerStorage
    procs = int(sys.argv[1])
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    out_r, out_w = os.pipe()
    kids = []
    for _ in range(procs):
        pid = os.fork()
        if pid == 0:
            for fd in (go_w, ready_r, out_r):
                os.close(fd)
            storage = StoreBreakerStorage(open_store(config.load()), "llm:openai/gpt-4o")
            os.write(ready_w, b"r")
            os.read(go_r, 1)
            os.write(out_w, b"1" if storage.take_probe(60, 30) else b"0")
            os._exit(0)
        kids.append(pid)
    for fd in (go_r, ready_w, out_w):
        os.close(fd)
    got = 0
    while got < procs:
        got += len(os.read(ready_r, procs))
    os.close(go_w)  # every worker's read returns at once
    codes = [os.waitpid(p, 0)[1] for p in kids]
    print(json.dumps({"won": os.fdopen(out_r).read(), "codes": codes}))
""")


def test_eight_processes_compare_and_swap_one_probe_slot(llm_env):
    project, store = llm_env
    _open_past_reset(store, 60)
    proc = subprocess.run([sys.executable, "-c", TAKERS, "8"], cwd=project, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert not any(out["codes"]) and sorted(out["won"]) == ["0"] * 7 + ["1"], out
    row = _row(store)
    assert row["state"] == "half-open" and row["probe_until"] > row["opened_at"]


def _open_past_reset(store, reset_s: float) -> None:
    """The circuit as repeated failures left it, its reset time just passed."""
    from elfctl.domain.clock import iso as _iso

    now = dt.datetime.now(dt.UTC)
    store.execute(
        "INSERT INTO breaker_state (name, state, fail_counter, opened_at, updated_at) "
        "VALUES (?, 'open', 5, ?, ?)",
        (NAME, _iso(now - dt.timedelta(seconds=reset_s + 1)), _iso(now)),
    )


def _row(store) -> dict:
    return store.query("SELECT state, opened_at, probe_until FROM breaker_state WHERE name = ?", (NAME,))[0]


def test_eight_processes_send_one_probe(llm_env, llm_server, monkeypatch):
    monkeypatch.setenv("ELFCTL_LLM_BREAKER_RESET_S", "60")
    monkeypatch.setenv("ELFCTL_LLM_TIMEOUT_S", "5")
    monkeypatch.setenv("ELFCTL_LLM_RETRY_MAX_TIME_S", "5")  # the probe is in flight for 5 s
    project, store = llm_env
    _team(project)
    _open_past_reset(store, 60)
    llm_server.stall("gpt-4o", seconds=30)
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, "8", llm_server.url],
        cwd=project, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["results"]) == 8 and not any(out["codes"]), out
    assert llm_server.calls("gpt-4o") == 1  # one probe (before: 8)
    reasons = sorted(r["reason"] for r in out["results"])
    assert all(r["model"] == "openai/gpt-4o-mini" for r in out["results"])
    assert sum("openai/gpt-4o: timeout" in r for r in reasons) == 1
    assert sum("openai/gpt-4o: CircuitOpen" in r for r in reasons) == 7
    # the 7 that found the probe in flight fell back at once instead of waiting for it
    assert sorted(r["took"] for r in out["results"])[6] < 4.0, out["results"]  # the probe takes 5 s
    row = _row(store)
    assert row["state"] == "open"  # the probe failed: open again, for another reset time
    opened = dt.datetime.fromisoformat(row["opened_at"])
    assert dt.datetime.now(dt.UTC) - opened < dt.timedelta(seconds=60)
    assert len(usage(store)) == 8


def test_killed_probe_frees_its_slot_when_the_budget_passes(llm_env, llm_server, monkeypatch):
    from elfctl import llm

    monkeypatch.setenv("ELFCTL_LLM_BREAKER_RESET_S", "60")
    monkeypatch.setenv("ELFCTL_LLM_TIMEOUT_S", "3")
    monkeypatch.setenv("ELFCTL_LLM_RETRY_MAX_TIME_S", "3")  # probe slot: 3 s + 1 s
    project, store = llm_env
    _team(project)
    llm.completion(team="alpha", model="openai/gpt-4o-mini", messages=MSG, api_base=llm_server.url)  # warm
    _open_past_reset(store, 60)
    llm_server.stall("gpt-4o", seconds=30)
    prober = subprocess.Popen([sys.executable, "-c", PROBE, llm_server.url], cwd=project,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while llm_server.calls("gpt-4o") == 0 and prober.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert llm_server.calls("gpt-4o") == 1, prober.stderr.read().decode()[-2000:] if prober.poll() else ""
    finally:
        os.kill(prober.pid, signal.SIGKILL)
        prober.wait()
    held = _row(store)
    assert held["state"] == "half-open"  # and nobody left to finish the probe

    # Within the slot: still open for everyone else, no second probe.
    resp = llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    info = resp._hidden_params["elfctl"]
    assert info["model"] == "openai/gpt-4o-mini" and "openai/gpt-4o: CircuitOpen" in info["fallback_reason"]
    assert llm_server.calls("gpt-4o") == 1

    # Past it: the next call probes, the provider has recovered, the circuit closes.
    left = (dt.datetime.fromisoformat(held["probe_until"]) - dt.datetime.now(dt.UTC)).total_seconds()
    time.sleep(max(0.0, left) + 0.1)
    llm_server.answer("gpt-4o")
    resp = llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=5)
    assert resp._hidden_params["elfctl"]["model"] == MODEL and llm_server.calls("gpt-4o") == 2
    assert _row(store)["state"] == "closed"
