"""`elfctl resources --json` with every type measured that this project has, beside `elfctl --version`
(the interpreter's and the CLI's start-up) in the same run. Target: < 1 s for the whole command.

The project: the real Docker engine and the test registry, one team deployed with 2 replicas (their
containers sampled twice for cpu), a team budget, an LLM provider endpoint (a loopback listener as
OPENAI_API_BASE), the SQLite store, then the Postgres store (connections against max_connections).
mcp_server is "not configured" and k8s_pod belongs to the Kubernetes target (the tests measure it on
the emulator). The slowest type's own time is reported too: types run concurrently, so the command
takes about that plus start-up. `--version`, resources on SQLite and on Postgres are run in turn,
round after round, and the 1-minute load average is reported with the figures."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import PY, Row, docker_sandbox, drop_pg, fresh_pg


def _elf(project: Path, env: dict, *args: str, ok=(0,)) -> subprocess.CompletedProcess:
    proc = subprocess.run([PY, "-m", "elfctl", *args], cwd=project, env=env, capture_output=True, text=True)
    if proc.returncode not in ok:
        raise RuntimeError(f"elfctl {' '.join(args)} exited {proc.returncode}: {proc.stderr[-400:]}")
    return proc


def _alternate(sides: dict[str, tuple[list[str], dict]], cwd: Path, repeat: int) -> dict[str, float]:
    """Median wall ms of each side's command, the sides run in turn each round (one warm-up round),
    so whatever else the machine does meanwhile weighs on every side alike."""
    samples: dict[str, list[float]] = {k: [] for k in sides}
    for i in range(repeat + 1):
        for name, (argv, env) in sides.items():
            t0 = time.perf_counter()
            subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if i:
                samples[name].append((time.perf_counter() - t0) * 1000)
    return {k: statistics.median(v) for k, v in samples.items()}


def _types(out: str) -> tuple[int, float, str]:
    doc = json.loads(out)
    measured = {t: v for t, v in doc["resources"].items() if v["status"] != "not_configured"}
    slowest = max(measured, key=lambda t: measured[t]["ms"])
    return len(measured), measured[slowest]["ms"], slowest


def run(env) -> list[Row]:
    pg_dsn = env.get("ELFCTL_TEST_PG_DSN") or os.environ.get("ELFCTL_TEST_PG_DSN")
    rows: list[Row] = []
    pg = None
    provider = socket.socket()
    provider.bind(("127.0.0.1", 0))
    provider.listen(64)  # the kernel completes the handshakes: enough for a reachability check
    with docker_sandbox(env, "r") as (_engine, tag, cfg_env):
        cfg_env["OPENAI_API_KEY"] = "sk-bench-" + tag
        cfg_env["OPENAI_API_BASE"] = f"http://127.0.0.1:{provider.getsockname()[1]}/v1"
        team = f"r{tag}"
        try:
            with tempfile.TemporaryDirectory() as tmp:
                project = Path(tmp)
                _elf(project, cfg_env, "init")
                _elf(project, cfg_env, "db", "migrate")
                _elf(project, cfg_env, "team", "new", team)
                spec = project / "teams" / team / "team.yaml"
                spec.write_text(spec.read_text().replace("replicas: 1", "replicas: 2"))
                _elf(project, cfg_env, "deploy", team)
                command = [PY, "-m", "elfctl", "resources", "--json"]
                out = _elf(project, cfg_env, "resources", "--json", ok=(0, 1)).stdout  # 1: a busy host's cpu
                n, slowest_ms, slowest = _types(out)
                sides = {"version": ([PY, "-m", "elfctl", "--version"], cfg_env), "sqlite": (command, cfg_env)}
                if pg_dsn:
                    url, pg = fresh_pg(pg_dsn)
                    pg_env = {**cfg_env, "ELFCTL_STORE_URL": url}
                    _elf(project, pg_env, "db", "migrate")
                    sides["postgres"] = (command, pg_env)
                load = os.getloadavg()[0]
                med = _alternate(sides, project, repeat=9)
                extra = {"load_1min": round(load, 1), "load_1min_after": round(os.getloadavg()[0], 1)}
                helptime = med["version"]
                rows.append(Row("resources", f"elfctl resources --json, SQLite store ({n} types measured)",
                                med["sqlite"], "ms", "elfctl --version", helptime, "<1000 ms", ok=med["sqlite"] < 1000,
                                extra={**extra, "slowest_type": slowest, "slowest_type_ms": slowest_ms}))
                rows.append(Row("resources", "its own share (less elfctl --version's start-up)", med["sqlite"] - helptime,
                                "ms", target="<1000 ms", ok=med["sqlite"] - helptime < 1000))
                rows.append(Row("resources", f"slowest type alone ({slowest})", slowest_ms, "ms", target="<1000 ms",
                                ok=slowest_ms < 1000))
                if "postgres" in med:
                    rows.append(Row("resources", "elfctl resources --json, Postgres store", med["postgres"], "ms",
                                    "elfctl --version", helptime, "<1000 ms", ok=med["postgres"] < 1000, extra=extra))
        finally:
            provider.close()
            if pg:
                drop_pg(pg_dsn, pg)
    return rows
