"""The gateway's added latency: the same request to the provider stub directly and through
`elfctl gateway serve` (one worker, SQLite store), interleaved in one loop at concurrency 1, so both
see the same machine state. Added latency = the gateway's percentile minus the direct one's.

Two teams: one without a budget (key check, chain, breaker, spool, background writer) and one with a
budget (plus the reservation and its settlement in the store). Goal: p50 <= 2 ms, p99 <= 10 ms.
Then requests/s at concurrency 32 (32 threads, an openai SDK client each) with 1 and 2 workers,
beside the same clients calling the stub directly. `ELFCTL_BENCH_GATEWAY_N` sets the calls per path
(default 2000), `ELFCTL_BENCH_GATEWAY_S` the seconds of each throughput run (default 10).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Row

MSG = [{"role": "user", "content": "hello"}]
P50_GOAL_MS, P99_GOAL_MS = 2.0, 10.0


def _pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _project(folder: Path):
    from tests.gateway.conftest import write_team

    from elfctl import config
    from elfctl.bootstrap import migrations_dir, open_store
    from elfctl.services.platform import migrate
    from elfctl.services.platform.project import init

    init(folder)
    os.environ.pop("ELFCTL_STORE_URL", None)
    write_team(folder, "free", "gpt-4o-mini")
    write_team(folder, "budgeted", "gpt-4o-mini", budget={"daily_usd": 1000000})
    cfg = config.load(cwd=folder)
    store = open_store(cfg)
    migrate.migrate(store, migrations_dir(cfg))
    return store


def wait_warm(base_url: str, key: str, body: dict, workers: int = 1) -> int:
    """Until the gateway's background import of litellm is over in every worker (4-12 s, GIL-bound:
    it would slow whatever is measured beside it); returns the calls made. A budgeted call counts its
    prompt with litellm's tokenizer, so its answer waits on that same import (Python's import lock).
    Rounds of concurrent budgeted calls, each on a connection of its own (so they spread over the
    workers), until a whole round answers within 2 s (an import takes 4 s or more), or for 3 minutes."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    def one(_: int) -> float:
        t0 = time.perf_counter()
        with httpx.Client(timeout=120) as http:
            r = http.post(base_url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
        if r.status_code != 200:
            raise RuntimeError(f"warm-up call: {r.status_code}: {r.text[:300]}")
        return time.perf_counter() - t0

    calls, size = 0, 1 if workers == 1 else 4 * workers
    end = time.monotonic() + 180
    with ThreadPoolExecutor(size) as pool:
        while True:
            slowest = max(pool.map(one, range(size)))
            calls += size
            if slowest < 2.0 or time.monotonic() > end:
                return calls


def overhead(n: int) -> list[Row]:
    import httpx
    from tests.gateway.conftest import GatewayProcess
    from tests.llm_server import LLMServer

    from elfctl.services.gateway import keys

    server = LLMServer().start()
    server.answer("*", prompt=10, completion=5)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="elfctl-bench-gw-") as tmp:
        folder = Path(tmp)
        store = _project(folder)
        gateway = GatewayProcess(folder, f"sqlite:///{folder / '.elf' / 'elf.db'}", server.url).start()
        try:
            body = {"model": "gpt-4o-mini", "messages": MSG, "max_tokens": 5}
            with httpx.Client(timeout=30) as http:
                warm = wait_warm(gateway.base_url, keys.mint(store, "budgeted"), body)
                for team in ("free", "budgeted"):
                    key = keys.mint(store, team)
                    through = {"Authorization": f"Bearer {key}"}
                    direct = {"Authorization": "Bearer sk-bench"}
                    for _ in range(50):  # warm: connections, the tokenizer (budgeted), caches
                        http.post(gateway.base_url + "/chat/completions", json=body, headers=through)
                        http.post(server.url + "/chat/completions", json=body, headers=direct)
                    d, g = [], []
                    cpu0 = _cpu_s(gateway.proc.pid)
                    for _ in range(n):
                        t0 = time.perf_counter()
                        r = http.post(server.url + "/chat/completions", json=body, headers=direct)
                        t1 = time.perf_counter()
                        q = http.post(gateway.base_url + "/chat/completions", json=body, headers=through)
                        t2 = time.perf_counter()
                        if r.status_code != 200 or q.status_code != 200:
                            raise RuntimeError(f"direct {r.status_code}, gateway {q.status_code}: {q.text[:300]}")
                        d.append((t1 - t0) * 1000)
                        g.append((t2 - t1) * 1000)
                    cpu_ms = (_cpu_s(gateway.proc.pid) - cpu0) * 1000 / n
                    # CPU per call holds still on a busy machine, where wall-clock percentiles do not.
                    rows.append(Row("gateway", f"gateway CPU per call, team {team}", cpu_ms, "ms",
                                    baseline="litellm's client CPU per call (issue 15)", baseline_value=9.5))
                    for name, q_, goal in (("p50", 0.5, P50_GOAL_MS), ("p99", 0.99, P99_GOAL_MS)):
                        added = _pct(g, q_) - _pct(d, q_)
                        rows.append(Row("gateway", f"added latency {name}, non-streaming, team {team}", added, "ms",
                                        baseline=f"direct to the stub {name}", baseline_value=_pct(d, q_),
                                        target=f"<= {goal:g} ms", ok=added <= goal,
                                        extra={"gateway_ms": _pct(g, q_), "n": n}))
                    print(f"  gateway: team {team}: direct p50 {statistics.median(d):.2f} ms, "
                          f"gateway p50 {statistics.median(g):.2f} ms, gateway CPU {cpu_ms:.2f} ms/call, "
                          f"load average {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
        finally:
            gateway.stop()  # its writer commits what it holds before the process ends
            server.stop()
        recorded = store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"]
        rows.append(Row("gateway", "calls in the ledger after the run", recorded, "rows",
                        baseline="gateway 200s", baseline_value=2 * (n + 50) + warm, target="all", ok=None))
        rows[-1].ok = recorded == 2 * (n + 50) + warm  # + the calls waiting for litellm's import
        store.close()
    return rows


def _rps(base_url: str, key: str, seconds: float, clients: int = 32) -> tuple[float, float, int]:
    """(requests/s, p99 ms, errors) of `clients` threads, each with its own openai SDK client."""
    import threading

    import openai

    stop, lock = threading.Event(), threading.Lock()
    lat: list[float] = []
    errors = [0]

    def loop() -> None:
        c = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=60)
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                c.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
            except openai.APIError:
                with lock:
                    errors[0] += 1
                continue
            with lock:
                lat.append((time.perf_counter() - t0) * 1000)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # warm-up, not counted
    with lock:
        lat.clear()
    t0 = time.perf_counter()
    time.sleep(seconds)
    with lock:
        n, p99 = len(lat), _pct(lat, 0.99) if lat else 0.0
    elapsed = time.perf_counter() - t0
    stop.set()
    for t in threads:
        t.join(60)
    return n / elapsed, p99, errors[0]


def throughput(seconds: float) -> list[Row]:
    from tests.gateway.conftest import GatewayProcess
    from tests.llm_server import LLMServer

    from elfctl.services.gateway import keys

    server = LLMServer().start()
    server.answer("*", prompt=10, completion=5)
    rows: list[Row] = []
    try:
        direct, direct_p99, _ = _rps(server.url, "sk-bench", seconds)
        for workers in (1, 2):
            with tempfile.TemporaryDirectory(prefix="elfctl-bench-gw-") as tmp:
                folder = Path(tmp)
                store = _project(folder)
                key = keys.mint(store, "free")
                gateway = GatewayProcess(folder, f"sqlite:///{folder / '.elf' / 'elf.db'}", server.url, workers).start()
                try:
                    wait_warm(gateway.base_url, keys.mint(store, "budgeted"),
                              {"model": "gpt-4o-mini", "messages": MSG, "max_tokens": 5}, workers)
                    rps, p99, errors = _rps(gateway.base_url, key, seconds)
                finally:
                    gateway.stop()
                store.close()
            rows.append(Row("gateway", f"requests/s at concurrency 32, {workers} worker(s)", rps, "req/s",
                            baseline="direct to the stub, same clients", baseline_value=direct,
                            extra={"p99_ms": p99, "direct_p99_ms": direct_p99, "errors": errors,
                                   "litellm_proxy": "not measured (litellm[proxy] not installed)"}))
            print(f"  gateway: {workers} worker(s): {rps:.0f} req/s (p99 {p99:.1f} ms, {errors} errors); "
                  f"direct {direct:.0f} req/s", file=sys.stderr, flush=True)
    finally:
        server.stop()
    return rows


def _first_token_ms(http, url: str, body: dict, headers: dict) -> float:
    """Milliseconds from sending a streamed request to its first content chunk; the rest is read to
    the end (so the connection is reused) and must end with [DONE]."""
    t0 = time.perf_counter()
    first, last = None, ""
    with http.stream("POST", url, json=body, headers=headers) as r:
        if r.status_code != 200:
            raise RuntimeError(f"{url}: {r.status_code}: {r.read()[:300]!r}")
        for line in r.iter_lines():
            if first is None and '"content":"' in line and '"content":""' not in line:
                first = time.perf_counter()
            if line:
                last = line
    if first is None or last != "data: [DONE]":
        raise RuntimeError(f"{url}: no content chunk or no [DONE] (last line {last!r})")
    return (first - t0) * 1000


def ttft(n: int) -> list[Row]:
    """Time to first token when streaming, direct to the stub and through the gateway, interleaved at
    concurrency 1 (team with a budget: reservation before, settlement after each stream)."""
    import httpx
    from tests.gateway.conftest import GatewayProcess
    from tests.llm_server import LLMServer

    from elfctl.services.gateway import keys

    server = LLMServer().start()
    server.answer("*", prompt=10, completion=5, content="one two three four five")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="elfctl-bench-gws-") as tmp:
        folder = Path(tmp)
        store = _project(folder)
        gateway = GatewayProcess(folder, f"sqlite:///{folder / '.elf' / 'elf.db'}", server.url).start()
        try:
            body = {"model": "gpt-4o-mini", "messages": MSG, "max_tokens": 5, "stream": True}
            through = {"Authorization": f"Bearer {keys.mint(store, 'budgeted')}"}
            direct = {"Authorization": "Bearer sk-bench"}
            with httpx.Client(timeout=30) as http:
                for _ in range(50):  # warm: connections, imports, the tokenizer
                    _first_token_ms(http, gateway.base_url + "/chat/completions", body, through)
                    _first_token_ms(http, server.url + "/chat/completions", body, direct)
                d, g = [], []
                cpu0 = _cpu_s(gateway.proc.pid)
                for _ in range(n):
                    d.append(_first_token_ms(http, server.url + "/chat/completions", body, direct))
                    g.append(_first_token_ms(http, gateway.base_url + "/chat/completions", body, through))
                cpu_ms = (_cpu_s(gateway.proc.pid) - cpu0) * 1000 / n
            rows.append(Row("gateway", "gateway CPU per streamed call, team budgeted", cpu_ms, "ms",
                            baseline="litellm's client CPU per call (issue 15)", baseline_value=9.5))
            for name, q_, goal in (("p50", 0.5, P50_GOAL_MS), ("p99", 0.99, P99_GOAL_MS)):
                added = _pct(g, q_) - _pct(d, q_)
                rows.append(Row("gateway", f"added time to first token {name}, streaming, team budgeted", added,
                                "ms", baseline=f"direct to the stub {name}", baseline_value=_pct(d, q_),
                                target=f"<= {goal:g} ms", ok=added <= goal, extra={"gateway_ms": _pct(g, q_), "n": n}))
            print(f"  gateway streaming: direct TTFT p50 {statistics.median(d):.2f} ms, gateway TTFT p50 "
                  f"{statistics.median(g):.2f} ms, gateway CPU {cpu_ms:.2f} ms/stream, "
                  f"load average {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
        finally:
            gateway.stop()
            server.stop()
        recorded = store.query("SELECT COUNT(*) AS n FROM api_usage WHERE completion_tokens = 5")[0]["n"]
        rows.append(Row("gateway", "streamed calls in the ledger with the provider's usage", recorded, "rows",
                        baseline="streams answered", baseline_value=n + 50, target="all",
                        ok=recorded == n + 50))
        store.close()
    return rows


def run(env: dict) -> list[Row]:
    n = int(os.environ.get("ELFCTL_BENCH_GATEWAY_N", "2000"))
    return overhead(n) + ttft(n) + throughput(float(os.environ.get("ELFCTL_BENCH_GATEWAY_S", "10")))
