"""A command that fails under --json prints one JSON object carrying `error` next to its result."""

from __future__ import annotations

import json

from tests.conftest import run_elfctl


def test_failing_health_carries_error_beside_the_checks(project):
    proc = run_elfctl("health", "--json", "-c", "store", cwd=project)  # the new store is not migrated
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert out["status"] == "fail" and out["checks"]["store"][0]["status"] == "fail"
    assert out["error"]["code"] == "failed" and out["error"]["message"] == "health: store failing"
    assert "error: health: store failing" in proc.stderr


def test_passing_health_has_no_error(project):
    assert run_elfctl("db", "migrate", cwd=project).returncode == 0
    proc = run_elfctl("health", "--json", "-c", "store", cwd=project)
    assert proc.returncode == 0 and "error" not in json.loads(proc.stdout)


def test_infra_status_not_up_carries_error(project):
    proc = run_elfctl("infra", "status", "--json", cwd=project,
                      env={"ELFCTL_REGISTRY_URL": "127.0.0.1:9", "ELFCTL_DOCKER_HOST": "tcp://127.0.0.1:9"})
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    assert out["error"]["code"] == "failed" and "not up:" in out["error"]["message"]
    assert "components" in out
