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

# Each worker is its own process (spawned, not forked: a fork after litellm's first call copied a lock
# that one of its threads held, and a child hung there once in CI). Each imports litellm, makes one bare
# call (litellm's lazy first-call imports), builds its runtime (its own store connection), says "ready"
# and waits on stdin: the test closes every stdin at once, so all of them call within milliseconds.
WORKER = textwrap.dedent("""
    import json, sys, time
    from elfctl import llm
    from elfctl.adapters import litellm_client
    url = sys.argv[1]
    litellm_client.complete("openai/warm-up", {"messages": [{"role": "user", "content": "x"}],
                                               "api_base": url, "api_key": "sk-x", "max_retries": 0})
    rt = llm.runtime()
    rt.policy("alpha", None)
    rt.caller._attempt_fn("openai/gpt-4o", False)  # the breaker's row and connection
    print("ready", flush=True)
    sys.stdin.read()  # returns when the test closes it
    t0 = time.monotonic()
    resp = llm.completion(team="alpha", messages=[{"role": "user", "content": "hello"}], api_base=url, max_tokens=5)
    info = resp._hidden_params["elfctl"]
    llm.flush()
    print(json.dumps({"model": info["model"], "reason": info["fallback_reason"], "took": time.monotonic() - t0}))
""")


def _call_at_once(project, url: str, n: int) -> tuple[list[dict], list[int]]:
    """n WORKER processes started, all ready, then released together: (their results, exit codes)."""
    logs = [project / f"worker-{i}.log" for i in range(n)]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, url], cwd=project, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=log.open("wb"), text=True) for log in logs]
    try:
        for p, log in zip(procs, logs, strict=True):
            line = p.stdout.readline()
            assert line.strip() == "ready", (line, p.wait(60), log.read_text()[-3000:])
        for p in procs:
            p.stdin.close()
        outs = []
        for p, log in zip(procs, logs, strict=True):
            outs.append(p.stdout.read())
            assert p.wait(120) == 0, log.read_text()[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    return [json.loads(out.strip().splitlines()[-1]) for out in outs], [p.returncode for p in procs]

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
    results, codes = _call_at_once(project, llm_server.url, 8)
    out = {"results": results, "codes": codes}
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
