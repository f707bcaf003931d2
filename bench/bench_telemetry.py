"""Telemetry: what a traced LLM call costs over an untraced one, in the same run (issue 20: < 0.3 ms).

Two elfctl.llm runtimes on one project and one local LLM server: one with telemetry off, one exporting
to a loopback OTLP/HTTP receiver (the real exporter, spans and metrics). Calls alternate in shuffled
order (as bench_llm does) and each side's median is taken; CPU per call is measured too, in blocks.
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
    samples: dict = {off: [], on: []}
    sides, rng = [off, on], random.Random(20)
    for _ in range(n):
        rng.shuffle(sides)
        for fn in sides:
            t = time.perf_counter()
            fn()
            samples[fn].append((time.perf_counter() - t) * 1e6)
    w_off, w_on = statistics.median(samples[off]), statistics.median(samples[on])
    cpu: dict = {off: [], on: []}
    for _ in range(3):
        for fn in (off, on):
            t = time.process_time()
            for _ in range(n // 6):
                fn()
            cpu[fn].append((time.process_time() - t) / (n // 6) * 1e6)
    c_off, c_on = statistics.median(cpu[off]), statistics.median(cpu[on])
    pipeline = rt_on.caller.trace.pipeline
    pipeline.flush(10)
    exported, dropped = pipeline.exported, pipeline.dropped
    for rt in (rt_on, rt_off):
        llm._runtime = rt
        llm.reset()
    store.close()
    return [
        Row("telemetry", "elfctl.llm.completion, telemetry on (OTLP/HTTP to loopback)", w_on, "us/call",
            "telemetry off", w_off, "< 300 us over off", ok=w_on - w_off < 300,
            extra={"spans_exported": exported, "spans_dropped": dropped}),
        Row("telemetry", "telemetry overhead per call (wall)", w_on - w_off, "us/call"),
        Row("telemetry", "elfctl.llm CPU per call, telemetry on", c_on, "us CPU/call", "telemetry off", c_off,
            "< 300 us over off", ok=c_on - c_off < 300),
        Row("telemetry", "telemetry CPU overhead per call", c_on - c_off, "us CPU/call"),
    ]


def run(env: dict) -> list[Row]:
    from tests.llm_server import LLMServer
    from tests.telemetry.receiver import Receiver

    server, receiver = LLMServer().start(), Receiver()
    server.answer("*", prompt=10, completion=5)
    cwd = os.getcwd()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return overhead(server, receiver, Path(tmp))
    finally:
        os.chdir(cwd)
        receiver.stop()
        server.stop()


if __name__ == "__main__":
    for row in run({}):
        print(row.to_dict())
