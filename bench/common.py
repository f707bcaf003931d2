"""Benchmark helpers: wall-time a command or a callable, compare with a baseline from the SAME run.

Machines here are shared and noisy, so every figure is reported beside a baseline measured in the
same run, and targets are checked on the ratio where the issue gives one.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


@dataclass
class Row:
    suite: str
    name: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    target: str | None = None
    ok: bool | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline_value:
            return self.value / self.baseline_value
        return None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ratio"] = self.ratio
        return d


def time_command(argv: list[str], repeat: int = 7, cwd: Path | None = None, env: dict | None = None,
                 warmup: int = 1, check: bool = True) -> float:
    """Median wall time in ms of running argv `repeat` times."""
    full_env = {**os.environ, **(env or {})}
    samples = []
    for i in range(warmup + repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = (time.perf_counter() - t0) * 1000
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
        if i >= warmup:
            samples.append(elapsed)
    return statistics.median(samples)


def time_call(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time in ms of fn()."""
    samples = []
    for i in range(warmup + repeat):
        t0 = time.perf_counter()
        fn()
        if i >= warmup:
            samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def fresh_pg(dsn: str, prefix: str = "bench") -> tuple[str, str]:
    """A new empty database on the benchmark's PostgreSQL server: (its URL, its name)."""
    import uuid

    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return dsn.rsplit("/", 1)[0] + "/" + name, name


def drop_pg(dsn: str, name: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def docker_sandbox(env: dict, letter: str):
    """Settings and resources of one benchmark run on the shared Docker engine: its own prefix,
    network and base image, and the test registry. Yields (engine, tag, cfg_env); removes every
    container, image and network carrying the run's tag afterwards."""
    import uuid

    from elfctl.adapters.docker_engine import DockerEngine
    from elfctl.adapters.local_images import ensure_base_image

    registry = env.get("ELFCTL_TEST_REGISTRY") or os.environ.get("ELFCTL_TEST_REGISTRY")
    if not registry:
        raise RuntimeError("no test registry (tests.realservices up starts one)")
    tag = uuid.uuid4().hex[:8]
    prefix = f"elf{letter}{tag}"
    cfg_env = {
        **os.environ,
        "ELFCTL_REGISTRY_URL": registry,
        "ELFCTL_DEPLOY_PREFIX": prefix,
        "ELFCTL_DEPLOY_NETWORK": prefix,
        "ELFCTL_DEPLOY_BASE_IMAGE": f"{prefix}/base:busybox",
        "NO_COLOR": "1",
    }
    engine = DockerEngine()
    ensure_base_image(engine, cfg_env["ELFCTL_DEPLOY_BASE_IMAGE"])
    engine.ensure_network(prefix, {"elfctl.managed": "true"})
    try:
        yield engine, tag, cfg_env
    finally:
        for c in engine.containers({"elfctl.prefix": prefix}):
            engine.remove(c["Id"], grace_s=0)
        for img in engine.images(label="elfctl.team") + engine.images(label="elfctl.managed"):
            for ref in img.get("RepoTags") or []:
                if tag in ref:
                    engine.remove_image(ref)
        engine.remove_network(prefix)
        engine.remove_image(cfg_env["ELFCTL_DEPLOY_BASE_IMAGE"])
