"""Telemetry: what a traced LLM call costs over an untraced one, in the same run (issue 20: < 0.3 ms).

Two elfctl.llm runtimes on one project and one local LLM server: one with telemetry off, one exporting
to a loopback OTLP/HTTP receiver in another process (the real exporter, spans and metrics). Calls
alternate in shuffled order (as bench_llm does) and each side's median is taken: wall time, and the
calling thread's CPU (what telemetry adds to the call itself, free of the machine's noise); the whole
process's CPU (the export thread's work included) in alternating blocks.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.bench_llm import MSG, _project
from bench.common import Row


def overhead(server, receiver, folder: Path, n: int = 600) -> list[Row]:
    from elfctl import llm

    store = _project(folder)
    os.chdir(folder)
    os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    llm.reset()
    rt_off = llm.runtime()
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
    llm._runtime = None
    rt_on = llm.runtime()
    del os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert rt_on.caller.trace.enabled and not rt_off.caller.trace.enabled
    kw = dict(messages=MSG, api_base=server.url, api_key="sk-bench", max_tokens=20)

    def call_with(rt):
        def fn():
            llm._runtime = rt
            return llm.completion(team="bench", model="openai/gpt-4o-mini", **kw)

        return fn

    off, on = call_with(rt_off), call_with(rt_on)
    for _ in range(20):
        off(), on()
    wall: dict = {off: [], on: []}
    mine: dict = {off: [], on: []}  # CPU of the calling thread: what the call itself pays
    sides, rng = [off, on], random.Random(20)
    for _ in range(n):
        rng.shuffle(sides)
        for fn in sides:
            t, c = time.perf_counter(), time.thread_time()
            fn()
            mine[fn].append((time.thread_time() - c) * 1e6)
            wall[fn].append((time.perf_counter() - t) * 1e6)
    w_off, w_on = statistics.median(wall[off]), statistics.median(wall[on])
    t_off, t_on = statistics.median(mine[off]), statistics.median(mine[on])
    # CPU of the whole process (the export thread's span making and encoding included; litellm's
    # logging threads and the in-process LLM server alike for both), in short alternating blocks.
    cpu: dict = {off: [], on: []}
    for _ in range(12):
        for fn in (off, on):
            t = time.process_time()
            for _ in range(25):
                fn()
            cpu[fn].append((time.process_time() - t) / 25 * 1e6)
    c_off, c_on = statistics.median(cpu[off]), statistics.median(cpu[on])
    pipeline = rt_on.caller.trace.pipeline
    pipeline.flush(10)
    exported, dropped = pipeline.exported, pipeline.dropped
    for rt in (rt_on, rt_off):
        llm._runtime = rt
        llm.reset()
    store.close()
    return [
        Row("telemetry", "elfctl.llm.completion, telemetry on (OTLP/HTTP to a collector process)", w_on, "us/call",
            "telemetry off", w_off, "< 300 us over off", ok=w_on - w_off < 300,
            extra={"spans_exported": exported, "spans_dropped": dropped}),
        Row("telemetry", "telemetry overhead per call (wall)", w_on - w_off, "us/call"),
        Row("telemetry", "calling thread's CPU per call, telemetry on", t_on, "us CPU/call", "telemetry off", t_off,
            "< 300 us over off", ok=t_on - t_off < 300),
        Row("telemetry", "telemetry overhead on the calling thread (CPU)", t_on - t_off, "us CPU/call"),
        Row("telemetry", "process CPU per call, telemetry on (export thread included)", c_on, "us CPU/call",
            "telemetry off", c_off),
        Row("telemetry", "telemetry CPU overhead per call, whole process", c_on - c_off, "us CPU/call"),
    ]


COLLECTOR = """
import sys, time
sys.path.insert(0, {repo!r})
from tests.telemetry.receiver import Receiver
r = Receiver()
print(r.url, flush=True)
sys.stdin.read()
"""


def run(env: dict) -> list[Row]:
    import subprocess
    import sys

    from tests.llm_server import LLMServer

    from bench.common import REPO

    server = LLMServer().start()
    server.answer("*", prompt=10, completion=5)
    # The collector in its own process: its CPU is not the caller's.
    collector = subprocess.Popen([sys.executable, "-c", COLLECTOR.format(repo=str(REPO))], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
    receiver = type("R", (), {"url": collector.stdout.readline().strip()})
    cwd = os.getcwd()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return overhead(server, receiver, Path(tmp))
    finally:
        os.chdir(cwd)
        collector.stdin.close()
        collector.wait(10)
        server.stop()


if __name__ == "__main__":
    for row in run({}):
        print(row.to_dict())
