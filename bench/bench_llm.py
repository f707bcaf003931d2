"""LLM path: elfctl.llm overhead over bare litellm (same local server, same run), usage ingest
throughput into SQLite and Postgres, and the budget overshoot of 8 processes on one small budget."""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import Row, fresh_pg

MSG = [{"role": "user", "content": "hello"}]


def _project(folder: Path, store_url: str | None = None):
    from elfctl import config
    from elfctl.bootstrap import migrations_dir, open_store
    from elfctl.services.platform import migrate
    from elfctl.services.platform.project import init

    init(folder)
    if store_url:
        os.environ["ELFCTL_STORE_URL"] = store_url
    else:
        os.environ.pop("ELFCTL_STORE_URL", None)
    cfg = config.load(cwd=folder)
    store = open_store(cfg)
    migrate.migrate(store, migrations_dir(cfg))
    return store


def overhead(server, folder: Path, n: int = 600) -> list[Row]:
    from elfctl import llm
    from elfctl.adapters.litellm_client import sdk
    from elfctl.domain.budget import Budget
    from elfctl.services.cost import budgets

    store = _project(folder)
    budgets.set_budget(store, Budget("bench", daily_nanousd=10**15))
    os.chdir(folder)
    llm.reset()
    litellm = sdk()
    kw = dict(messages=MSG, api_base=server.url, api_key="sk-bench", max_tokens=20)
    bare = lambda: litellm.completion(model="openai/gpt-4o-mini", max_retries=0, **kw)  # noqa: E731
    # A second runtime recording before returning (llm.record=sync: the path before the writer
    # thread), timed in the same loop; the default runtime is swapped back after each of its calls.
    rt_bg = llm.runtime()
    os.environ["ELFCTL_LLM_RECORD"] = "sync"
    llm._runtime = None
    rt_sync = llm.runtime()
    del os.environ["ELFCTL_LLM_RECORD"]
    llm._runtime = rt_bg

    def call_with(rt):
        def fn():
            llm._runtime = rt
            try:
                return llm.completion(team="bench", model="openai/gpt-4o-mini", **kw)
            finally:
                llm._runtime = rt_bg

        return fn

    elf, elf_sync = call_with(rt_bg), call_with(rt_sync)
    for _ in range(20):
        bare(), elf(), elf_sync()
    # Alternate call by call and take each side's median: load from other processes on a shared
    # machine drifts over seconds, and a median of single calls ignores the spikes.
    # The order is shuffled each round: litellm's post-call logging thread (and elfctl's writer)
    # keep running into whichever call comes next, so a fixed order would bill one side for the
    # other's background work.
    b_samples, e_samples, s_samples = [], [], []
    sides = [(bare, b_samples), (elf, e_samples), (elf_sync, s_samples)]
    rng = random.Random(4)
    for _ in range(n):
        rng.shuffle(sides)
        for fn, out in sides:
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1e6)
    b, e, sy = (statistics.median(x) for x in (b_samples, e_samples, s_samples))
    # CPU time per call (whole process: litellm's background logging threads and the in-process
    # server count for both sides alike): the work elfctl adds, without the wall-clock effect of
    # litellm's post-call logging thread now sharing the interpreter with elfctl's bookkeeping.
    cpu_b, cpu_e = [], []
    for _ in range(3):
        for fn, out in ((bare, cpu_b), (elf, cpu_e)):
            t = time.process_time()
            for _ in range(n // 6):
                fn()
            out.append((time.process_time() - t) / (n // 6) * 1e6)
    cb, ce = statistics.median(cpu_b), statistics.median(cpu_e)
    llm.flush()
    rt_sync.caller.recorder.close()
    rt_sync.store.close()
    llm.reset()
    store.close()
    extra = e - b
    return [
        Row(
            "llm",
            "elfctl.llm.completion (budget, breaker, ledger; SQLite)",
            e,
            "us/call",
            "bare litellm.completion",
            b,
            "<1 ms and <10% over litellm",
            ok=extra < 1000 and e <= 1.10 * b,
        ),
        Row("llm", "elfctl.llm overhead per call (wall)", extra, "us/call"),
        Row(
            "llm",
            "elfctl.llm.completion, llm.record=sync (commit before returning)",
            sy,
            "us/call",
            "bare litellm.completion",
            b,
            extra={"overhead_us": sy - b},
        ),
        Row(
            "llm",
            "elfctl.llm CPU per call",
            ce,
            "us CPU/call",
            "bare litellm.completion CPU",
            cb,
            "<1 ms and <10% over litellm",
            ok=ce - cb < 1000 and ce <= 1.10 * cb,
        ),
        Row("llm", "elfctl.llm CPU overhead per call", ce - cb, "us CPU/call"),
    ]


def ingest(store, label: str, n: int = 60_000, batch: int = 2000) -> Row:
    from elfctl.domain.usage import UsageRow
    from elfctl.services.cost import ledger

    teams, models = (
        [f"team-{i}" for i in range(10)],
        ["openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude"],
    )
    rows = [
        UsageRow(
            request_id=uuid.uuid4().hex,
            ts=f"2026-03-{1 + i % 28:02d}T10:{i % 60:02d}:00.000+00:00",
            team=teams[i % 10],
            requested_model=models[i % 3],
            model=models[i % 3],
            prompt_tokens=100,
            completion_tokens=20,
            cost_nanousd=1234 + i,
        )
        for i in range(n)
    ]
    t = time.perf_counter()
    for i in range(0, n, batch):
        ledger.record(store, rows[i : i + batch])
    rate = n / (time.perf_counter() - t)
    want = sum(r.cost_nanousd for r in rows)
    got = int(store.query("SELECT SUM(cost_nanousd) AS s FROM daily_cost_summary")[0]["s"])
    assert got == want, "rollup disagrees with the rows"
    return Row(
        "llm",
        f"usage ingest, {batch}-row batches, rollup kept current ({label})",
        rate,
        "rows/s",
        target=">=20000 rows/s" if label == "SQLite" else None,
        ok=rate >= 20000 if label == "SQLite" else None,
    )


def overshoot(server, folder: Path, store_url: str | None, label: str) -> Row:
    from tests.llm import hammer

    store = _project(folder, store_url)
    team = folder / "teams" / "alpha"
    team.mkdir(parents=True)
    (team / "team.yaml").write_text("name: alpha\nllm:\n  model: openai/gpt-4o\n  budget:\n    daily_usd: 0.02\n")
    env_before = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = "sk-bench"
    try:
        got = hammer.run(folder, server, 8)
    finally:
        if env_before is None:
            os.environ.pop("OPENAI_API_KEY", None)
    f = hammer.figures(store, 20_000_000, got["calls"], 8)
    store.close()
    return Row(
        "llm",
        f"budget overshoot, 8 processes, $0.02 budget ({label})",
        f["overshoot"],
        "nUSD",
        "bound: 8 x per-call estimation error",
        f["bound"],
        "overshoot <= bound",
        ok=f["overshoot"] <= f["bound"],
        extra={**f, "naive_8_whole_calls": 8 * f["per_call"]},
    )


def run(env) -> list[Row]:
    from tests.llm_server import LLMServer

    cwd = os.getcwd()
    server = LLMServer().start()
    server.answer("*", prompt=10, completion=20)
    rows: list[Row] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows += overhead(server, Path(tmp) / "overhead")
            s = _project(Path(tmp) / "ingest")
            rows.append(ingest(s, "SQLite"))
            s.close()
            dsn = env.get("ELFCTL_TEST_PG_DSN") or os.environ.get("ELFCTL_TEST_PG_DSN")
            if dsn:
                s = _project(Path(tmp) / "ingest-pg", fresh_pg(dsn)[0])
                rows.append(ingest(s, "Postgres"))
                s.close()
            rows.append(overshoot(server, Path(tmp) / "hammer", None, "SQLite"))
            if dsn:
                rows.append(overshoot(server, Path(tmp) / "hammer-pg", fresh_pg(dsn)[0], "Postgres"))
    finally:
        os.chdir(cwd)
        os.environ.pop("ELFCTL_STORE_URL", None)
        server.stop()
    return rows
