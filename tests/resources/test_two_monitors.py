"""Two `elfctl resources --apply` processes at once on the real dockerd, both reading a 2-replica team's
containers as critical: the team's deploy lease (services/deploy/lock.py) lets one scale it down; the
other waits, sees the change made since its reading, and does not repeat it. One trail row, one change,
one container left, and a restore afterwards that also happens once."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.contract.test_deploy_target import _wait_for
from tests.deploy.conftest import docker_env, engine, make_team, registry_address, team_name  # noqa: F401
from tests.resources.test_scale_kill9 import HOT, _containers, _health, _scale_rows, team  # noqa: F401


def _apply_at_once(project, env, n: int = 2) -> list[list[dict]]:
    """n `elfctl resources --apply --json` started together; each one's scale_down/restore steps."""
    import os

    procs = [subprocess.Popen([sys.executable, "-m", "elfctl", "resources", "--apply", "--json"], cwd=project,
                              env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(n)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode in (0, 1), (p.returncode, stdout[-2000:], stderr[-2000:])
        out.append([s for s in json.loads(stdout)["policy"] if s["strategy"] in ("scale_down", "restore")])
    return out


def test_two_monitors_at_once_scale_a_team_down_once_and_restore_it_once(project, team, engine):  # noqa: F811
    name, env = team
    assert _health(project, env, name)[0] == 2

    both = _apply_at_once(project, {**env, **HOT})
    results = sorted(s["result"] for steps in both for s in steps)
    assert results.count("ok: 2 -> 1 replicas") == 1, both
    assert all(r == "ok: 2 -> 1 replicas" or not r.startswith("ok") for r in results), both
    assert _scale_rows(project) == [("scale_down", "ok: 2 -> 1 replicas")]
    count, output = _health(project, env, name)
    assert count == 1 and output.startswith("1/1 ready"), output
    assert _wait_for(lambda: len(_containers(engine, env, name)) == 1, timeout=60), _containers(engine, env, name)

    both = _apply_at_once(project, env)  # recovered: both would restore
    results = sorted(s["result"] for steps in both for s in steps)
    assert results.count("ok: 1 -> 2 replicas") == 1, both
    assert all(r == "ok: 1 -> 2 replicas" or not r.startswith("ok") for r in results), both
    assert _scale_rows(project) == [("scale_down", "ok: 2 -> 1 replicas"), ("restore", "ok: 1 -> 2 replicas")]
    count, output = _health(project, env, name)
    assert count == 2 and output.startswith("2/2 ready"), output
    assert len(_containers(engine, env, name)) == 2
