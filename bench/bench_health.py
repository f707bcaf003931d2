"""`elfctl health` with every component up, beside `elfctl --help` in the same run. Target: < 1 s.

"Every component": the store (SQLite, and Postgres from `realservices up`), the Docker engine, the
test registry, one deployed team (its container's health endpoint is asked), one LLM provider
configured (team.yaml llm.model openai/..., its key in the environment), budgets, creds, disk,
memory. Without --deep: the cheap real call imports litellm (seconds) and is timed apart."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from bench.common import PY, Row, docker_sandbox, drop_pg, fresh_pg, time_command

LLM = "llm:\n  model: openai/gpt-4o-mini\n  budget:\n    daily_usd: 5\n"


def _elf(project: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([PY, "-m", "elfctl", *args], cwd=project, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"elfctl {' '.join(args)} exited {proc.returncode}: {proc.stderr[-400:]}")
    return proc


def run(env) -> list[Row]:
    pg_dsn = env.get("ELFCTL_TEST_PG_DSN") or os.environ.get("ELFCTL_TEST_PG_DSN")
    rows: list[Row] = []
    pg = None
    with docker_sandbox(env, "h") as (_engine, tag, cfg_env):
        cfg_env["OPENAI_API_KEY"] = "sk-bench-" + tag
        team = f"h{tag}"
        try:
            with tempfile.TemporaryDirectory() as tmp:
                project = Path(tmp)
                _elf(project, cfg_env, "init")
                _elf(project, cfg_env, "db", "migrate")
                _elf(project, cfg_env, "team", "new", team)
                spec = project / "teams" / team / "team.yaml"
                spec.write_text(spec.read_text() + LLM)
                _elf(project, cfg_env, "deploy", team)
                health = [PY, "-m", "elfctl", "health", "--json"]
                out = _elf(project, cfg_env, "health", "--json").stdout  # every component passes
                helptime = time_command([PY, "-m", "elfctl", "--help"], repeat=7, cwd=project, env=cfg_env)
                sqlite = time_command(health, repeat=7, cwd=project, env=cfg_env)
                components = len(json.loads(out)["checks"])
                rows.append(Row("health", f"elfctl health, SQLite store ({components} components)", sqlite, "ms",
                                "elfctl --help", helptime, "<1000 ms", ok=sqlite < 1000))
                if pg_dsn:
                    url, pg = fresh_pg(pg_dsn)
                    pg_env = {**cfg_env, "ELFCTL_STORE_URL": url}
                    _elf(project, pg_env, "db", "migrate")
                    pgtime = time_command(health, repeat=7, cwd=project, env=pg_env, check=False)
                    rows.append(Row("health", "elfctl health, Postgres store", pgtime, "ms",
                                    "elfctl --help", helptime, "<1000 ms", ok=pgtime < 1000))
        finally:
            if pg:
                drop_pg(pg_dsn, pg)
    return rows
