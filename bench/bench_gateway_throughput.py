"""The gateway's throughput against LiteLLM's own proxy, side by side in one run: the same provider
stub (tests/llm_server.py, in a process of its own so that it shares no GIL with the load generator),
the same client (the official `openai` SDK, async, concurrency 32), the same worker count (1 and 2).
LiteLLM's proxy runs from config only (no database, so it keeps no spend log); elfctl's gateway records
every call in its ledger, which is checked after each run. Each gateway is measured once its
background import of litellm is over (bench_gateway.wait_warm), as LiteLLM's proxy is once it serves.

Also the ledger's freshness: the delay from a 200 to its row being readable in the store (what
`cost report` reads), p99 over sequential calls.

LiteLLM's proxy (`litellm[proxy]==1.106.12`, the newest that installs from the registries here) lives
in its own venv: $ELFCTL_BENCH_LITELLM_VENV, default .bench/litellm-proxy, created on first use (a
few minutes). `ELFCTL_BENCH_THROUGHPUT_N` sets the requests per run (default 1500).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO, Row

LITELLM_VERSION = "1.106.12"
CONCURRENCY = 32
MASTER = "sk-bench-master"
MSG = [{"role": "user", "content": "hello"}]


def _pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def litellm_venv() -> Path:
    venv = Path(os.environ.get("ELFCTL_BENCH_LITELLM_VENV") or REPO / ".bench" / "litellm-proxy")
    exe = venv / "bin" / "litellm"
    if not exe.exists():
        print(f"  creating {venv} with litellm[proxy]=={LITELLM_VERSION} (once) ...", file=sys.stderr, flush=True)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"],
                       check=True)
    return venv


class StubProcess:
    """tests/llm_server.py as `python -m tests.llm_server` (every model answered with 10 prompt and 5
    completion tokens): the provider both proxies call."""

    def __init__(self):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.llm_server"], cwd=REPO, env=env,
                                     stdout=subprocess.PIPE, start_new_session=True)
        self.url = self.proc.stdout.readline().decode().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the provider stub did not start (it printed {self.url!r})")

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)


class LiteLLMProxy:
    def __init__(self, venv: Path, provider_url: str, workers: int, folder: Path):
        from tests.realservices import free_port

        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        cfg = folder / f"litellm-{self.port}.yaml"
        cfg.write_text(
            "model_list:\n"
            "  - model_name: gpt-4o-mini\n"
            "    litellm_params:\n"
            "      model: openai/gpt-4o-mini\n"
            f"      api_base: {provider_url}\n"
            "      api_key: sk-bench-provider\n"
            "litellm_settings:\n"
            "  drop_params: true\n")
        self.log = folder / f"litellm-{self.port}.log"
        env = {**os.environ, "LITELLM_MASTER_KEY": MASTER, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
               "LITELLM_LOG": "ERROR"}
        env.pop("DATABASE_URL", None)
        self.proc = subprocess.Popen(
            [str(venv / "bin" / "litellm"), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(self.port),
             "--num_workers", str(workers),
             # uvicorn kills a worker that does not answer its supervisor's ping within 5 s: on a loaded
             # machine, LiteLLM's workers importing litellm then never start (restarted again and again).
             "--timeout_worker_healthcheck", "120"],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("wb"), start_new_session=True)

    def wait(self, timeout_s: float = 180) -> LiteLLMProxy:
        import httpx

        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"litellm proxy exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.base_url + "/health/liveliness", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"litellm proxy did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


async def _load(base_url: str, key: str, n: int) -> tuple[float, list[float], int]:
    """n chat completions at CONCURRENCY through the openai SDK: (requests/s, latencies ms, 200s)."""
    import httpx
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=60,
                                http_client=httpx.AsyncClient(limits=httpx.Limits(max_connections=CONCURRENCY * 2)))
    sem = asyncio.Semaphore(CONCURRENCY)
    lat: list[float] = []
    ok = 0

    async def one():
        nonlocal ok
        async with sem:
            t0 = time.perf_counter()
            try:
                await client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
                ok += 1
            except openai.APIError:
                return
            lat.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(one() for _ in range(min(200, n))))  # warm: connections, caches, workers
    lat.clear()
    ok = 0
    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    elapsed = time.perf_counter() - t0
    await client.close()
    return ok / elapsed, lat, ok


def _rows_for(workers: int, n: int, server, folder: Path, store, venv: Path) -> list[Row]:
    from tests.gateway.conftest import GatewayProcess

    from bench.bench_gateway import wait_warm
    from elfctl.services.gateway import keys

    proxy = LiteLLMProxy(venv, server.url, workers, folder)
    try:
        proxy.wait()
        l_rps, l_lat, l_ok = asyncio.run(_load(proxy.base_url, MASTER, n))
    finally:
        proxy.stop()
    before = store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"]
    gateway = GatewayProcess(folder, f"sqlite:///{folder / '.elf' / 'elf.db'}", server.url, workers=workers).start()
    try:
        waited = wait_warm(gateway.base_url, keys.mint(store, "budgeted"),
                           {"model": "gpt-4o-mini", "messages": MSG, "max_tokens": 5}, workers)
        g_rps, g_lat, g_ok = asyncio.run(_load(gateway.base_url, keys.mint(store, "free"), n))
    finally:
        gateway.stop()  # its writers commit what they hold before the processes end
    recorded = store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"] - before
    warm = min(200, n) + waited  # the SDK's warm-up and the calls waiting for litellm's import
    print(f"  throughput, {workers} worker(s): litellm {l_rps:.0f}/s p99 {_pct(l_lat, .99):.1f} ms ({l_ok} ok); "
          f"elfctl {g_rps:.0f}/s p99 {_pct(g_lat, .99):.1f} ms ({g_ok} ok, {recorded} rows); "
          f"load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    suite = "gateway_throughput"
    return [
        Row(suite, f"requests/s at c={CONCURRENCY}, {workers} worker(s)", g_rps, "req/s",
            baseline=f"LiteLLM proxy {LITELLM_VERSION}, {workers} worker(s)", baseline_value=l_rps,
            target=">= 2x LiteLLM's", ok=g_rps >= 2 * l_rps, extra={"n": n, "gateway_ok": g_ok, "litellm_ok": l_ok}),
        Row(suite, f"p99 latency at c={CONCURRENCY}, {workers} worker(s)", _pct(g_lat, .99), "ms",
            baseline="LiteLLM proxy p99", baseline_value=_pct(l_lat, .99), target="lower than LiteLLM's",
            ok=_pct(g_lat, .99) < _pct(l_lat, .99), extra={"p50": _pct(g_lat, .5), "litellm_p50": _pct(l_lat, .5)}),
        Row(suite, f"ledger rows after the run, {workers} worker(s)", recorded, "rows",
            baseline="gateway 200s (with warm-up)", baseline_value=g_ok + warm, target="every call",
            ok=recorded == g_ok + warm),
    ]


def freshness(server, folder: Path, store, calls: int = 200) -> Row:
    """Delay from a 200 to the row being readable in the store, sequential calls."""
    import httpx
    from tests.gateway.conftest import GatewayProcess

    from elfctl.services.gateway import keys

    gateway = GatewayProcess(folder, f"sqlite:///{folder / '.elf' / 'elf.db'}", server.url).start()
    delays = []
    try:
        headers = {"Authorization": f"Bearer {keys.mint(store, 'free')}"}
        body = {"model": "gpt-4o-mini", "messages": MSG, "max_tokens": 5}
        with httpx.Client(timeout=30) as http:
            for _ in range(calls):
                before = store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"]
                r = http.post(gateway.base_url + "/chat/completions", json=body, headers=headers)
                t0 = time.perf_counter()
                if r.status_code != 200:
                    raise RuntimeError(f"gateway {r.status_code}: {r.text[:300]}")
                while store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"] <= before:
                    if time.perf_counter() - t0 > 10:
                        raise RuntimeError("a row took more than 10 s to appear")
                    time.sleep(0.001)
                delays.append((time.perf_counter() - t0) * 1000)
    finally:
        gateway.stop()
    p99 = _pct(delays, .99)
    return Row("gateway_throughput", "ledger freshness p99 (200 -> row readable)", p99, "ms",
               target="< 1000 ms", ok=p99 < 1000, extra={"p50": _pct(delays, .5), "calls": calls})


def run(env: dict) -> list[Row]:
    from bench.bench_gateway import _project

    n = int(os.environ.get("ELFCTL_BENCH_THROUGHPUT_N", "1500"))
    venv = litellm_venv()
    server = StubProcess()
    rows: list[Row] = []
    try:
        with tempfile.TemporaryDirectory(prefix="elfctl-bench-tp-") as tmp:
            folder = Path(tmp)
            store = _project(folder)
            try:
                for workers in (1, 2):
                    rows += _rows_for(workers, n, server, folder, store, venv)
                rows.append(freshness(server, folder, store))
            finally:
                store.close()
    finally:
        server.stop()
    return rows
