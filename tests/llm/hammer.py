"""N processes calling elfctl.llm on one team's small budget at once (used by the test and the bench).

One launcher process imports litellm once (4 s of CPU each otherwise), then forks the N workers: N
separate processes, each with its own store connection, racing for the same budget.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

LAUNCHER = textwrap.dedent("""
    import json, os, sys
    from elfctl.adapters import litellm_client
    litellm_client.sdk()
    litellm_client.count_prompt_tokens("openai/gpt-4o", {"messages": [{"role": "user", "content": "x"}]})
    procs, url = int(sys.argv[1]), sys.argv[2]
    r, w = os.pipe()
    kids = []
    for _ in range(procs):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            from elfctl import llm
            from elfctl.domain.budget import BudgetExceeded
            ok = blocked = 0
            while blocked < 3 and ok < 500:
                try:
                    llm.completion(team="alpha", messages=[{"role": "user", "content": "hello"}],
                                   api_base=url, max_tokens=100)
                    ok += 1
                except BudgetExceeded:
                    blocked += 1
            llm.flush()  # os._exit skips atexit, which would flush
            os.write(w, (json.dumps({"ok": ok, "blocked": blocked}) + "\\n").encode())
            os._exit(0)
        kids.append(pid)
    os.close(w)
    codes = [os.waitpid(p, 0)[1] for p in kids]
    lines = os.fdopen(r).read().splitlines()
    res = [json.loads(x) for x in lines]
    print(json.dumps({"calls": sum(x["ok"] for x in res), "blocked": sum(x["blocked"] for x in res),
                      "workers": len(res), "codes": codes}))
""")

# The team's model is openai/gpt-4o: input 2500 nUSD/token, output 10000. litellm counts 8 prompt
# tokens for the message; the server bills 200 (think tool schemas the estimate did not see), so
# every call costs 192 x 2500 nUSD more than it reserved: the estimation error.
PROMPT_BILLED, PROMPT_COUNTED, COMPLETION = 200, 8, 100
PER_CALL_ERROR = (PROMPT_BILLED - PROMPT_COUNTED) * 2500
PER_CALL_COST = PROMPT_BILLED * 2500 + COMPLETION * 10000


def run(project, server, procs: int = 8, timeout: float = 300) -> dict:
    server.answer("gpt-4o", prompt=PROMPT_BILLED, completion=COMPLETION, delay=0.02)
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(procs), server.url],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["workers"] != procs or any(out["codes"]):
        raise RuntimeError(f"a worker failed: {out}\n{proc.stderr[-3000:]}")
    return out


def figures(store, limit: int, calls: int, procs: int = 8) -> dict:
    spent = int(
        store.query("SELECT COALESCE(SUM(cost_nanousd),0) AS s FROM api_usage WHERE team='alpha'")[0]["s"]
    )
    return {
        "limit": limit,
        "spent": spent,
        "overshoot": max(0, spent - limit),
        "bound": procs * PER_CALL_ERROR,
        "per_call": PER_CALL_COST,
        "calls": calls,
        "procs": procs,
    }
