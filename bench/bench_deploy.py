"""`elfctl deploy` of a changed and of an unchanged team, beside the same steps done by hand with the
docker CLI (build, push, run, a curl loop until the health check answers, remove the old container)
in the same run. Targets: elfctl adds under 20% to the plain sequence; an unchanged redeploy < 2 s.

For a like-for-like comparison the bench team's gate is 1 success at a 0.1 s period and no soak window
(the plain sequence has neither); both sides start from the same warm build cache.

elfctl returns once the new version serves: the replaced replica is drained, stopped and removed by
a detached helper afterwards (README, deploy). The plain sequence's `docker rm -f` of the old
container stays inside its timing, as a user typing it would wait for it; the bench waits, untimed,
for elfctl's helper to finish before the next measurement, so that work never slows the baseline."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import PY, Row, docker_sandbox

HEALTH = """\
health:
  path: /health
  period_s: 0.1
  timeout_s: 1
  success_threshold: 1
  failure_threshold: 3
  start_timeout_s: 30
  soak_s: 0
"""


def _sh(argv, env=None, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-400:]}")
    return proc


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def _wait_retired(engine, prefix: str, team: str, limit_s: float = 30) -> None:
    """Untimed: until elfctl's detached helper has stopped and removed the replaced replica, so its
    engine work does not land inside the next plain measurement."""
    deadline = time.monotonic() + limit_s
    labels = {"elfctl.prefix": prefix, "elfctl.team": team, "elfctl.role": "app"}
    while len(engine.containers(labels)) > 1 and time.monotonic() < deadline:
        time.sleep(0.1)


def run(env) -> list[Row]:
    docker_env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    rows: list[Row] = []
    with docker_sandbox(env, "b") as (engine, tag, cfg_env):
        # Busybox httpd ignores SIGTERM: a short grace keeps the untimed _wait_retired short.
        cfg_env = {**cfg_env, "ELFCTL_DEPLOY_STOP_GRACE_S": "1"}
        prefix, registry = cfg_env["ELFCTL_DEPLOY_PREFIX"], cfg_env["ELFCTL_REGISTRY_URL"]
        team = f"b{tag}"
        plain_repo = f"{registry}/elfctl-bench/{team}-plain"
        plain_names: list[str] = []
        try:
            with tempfile.TemporaryDirectory() as tmp:
                project = Path(tmp)

                def elf(*args, check=True):
                    return subprocess.run(
                        [PY, "-m", "elfctl", *args],
                        cwd=project,
                        env=cfg_env,
                        capture_output=True,
                        text=True,
                        check=check,
                    )

                elf("init")
                elf("db", "migrate")
                elf("team", "new", team)
                folder = project / "teams" / team
                text = (folder / "team.yaml").read_text()
                (folder / "team.yaml").write_text(
                    text[: text.index("health:")] + HEALTH + text[text.index("env:") :]
                )
                elf("deploy", team)  # warm: base layers cached, proxy created

                def change(i: int) -> None:
                    (folder / "www" / "index.html").write_text(f"version {i} {uuid.uuid4().hex}")

                def plain_deploy(i: int) -> None:
                    ref = f"{plain_repo}:v{i}"
                    _sh(["docker", "build", "-q", "-t", ref, str(folder)], env=docker_env)
                    _sh(["docker", "push", "-q", ref], env=docker_env)
                    name = f"{prefix}-plain-{i}"
                    _sh(["docker", "run", "-d", "--name", name, "--network", prefix, ref])
                    ip = _sh(
                        [
                            "docker",
                            "inspect",
                            "-f",
                            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                            name,
                        ]
                    ).stdout.strip()
                    while (
                        _sh(["curl", "-sf", "-m", "1", f"http://{ip}:8080/health"], check=False).returncode != 0
                    ):
                        time.sleep(0.1)
                    if plain_names:
                        _sh(["docker", "rm", "-f", plain_names.pop()])
                    plain_names.append(name)

                plain_deploy(0)  # warm
                elf_changed, plain_changed = [], []
                for i in range(1, 4):
                    change(i)
                    plain_changed.append(_timed(lambda i=i: plain_deploy(i)))
                    elf_changed.append(_timed(lambda: elf("deploy", team)))
                    _wait_retired(engine, prefix, team)
                e, p = statistics.median(elf_changed), statistics.median(plain_changed)
                rows.append(
                    Row(
                        "deploy",
                        "elfctl deploy (changed team)",
                        e,
                        "ms",
                        "docker build+push+run+curl loop",
                        p,
                        "<=1.2x",
                        ok=e <= 1.2 * p,
                    )
                )

                elf_same, plain_same = [], []
                last = f"{plain_repo}:v3"
                for _ in range(5):
                    elf_same.append(_timed(lambda: elf("deploy", team)))
                    plain_same.append(
                        _timed(
                            lambda: (
                                _sh(["docker", "build", "-q", "-t", last, str(folder)], env=docker_env),
                                _sh(["docker", "push", "-q", last], env=docker_env),
                            )
                        )
                    )
                e, p = statistics.median(elf_same), statistics.median(plain_same)
                rows.append(
                    Row(
                        "deploy",
                        "elfctl deploy (unchanged team)",
                        e,
                        "ms",
                        "docker build+push (cached, no run)",
                        p,
                        "<2000 ms",
                        ok=e < 2000,
                    )
                )
                elf("infra", "down", check=False)
        finally:  # the plain docker sequence's own containers and images (the sandbox has the rest)
            for name in plain_names:
                engine.remove(name, grace_s=0)
            for ref in _sh(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout.split():
                if ref.startswith(plain_repo):
                    engine.remove_image(ref)
    return rows
