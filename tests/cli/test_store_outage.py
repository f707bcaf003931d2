"""With the store down, commands say the store is unreachable (exit 3), not something else."""

from __future__ import annotations

import json

import pytest
from tests import realservices
from tests.conftest import run_elfctl, unavailable


@pytest.fixture
def throwaway_pg():
    """A real PostgreSQL server of this test's own, which it may stop: (admin DSN, data folder)."""
    import shutil

    try:
        dsn, data = realservices.start_postgres()  # a folder of its own that the postgres user can enter
    except Exception as exc:  # noqa: BLE001
        unavailable(f"cannot start PostgreSQL: {exc}")
    yield dsn, data
    realservices.stop_postgres(data)
    shutil.rmtree(data.parent, ignore_errors=True)


def test_missing_secrets_with_the_store_down_says_unreachable(project, throwaway_pg):
    if not realservices.docker_answers():
        unavailable("Docker engine not answering (the environment step pings it first)")
    dsn, data = throwaway_pg
    env = {"ELFCTL_STORE_URL": dsn}
    assert run_elfctl("team", "new", "alpha", cwd=project).returncode == 0
    spec = project / "teams" / "alpha" / "team.yaml"
    spec.write_text(spec.read_text().replace("secrets: []", "secrets: [ALPHA_TOKEN]"))
    assert run_elfctl("db", "migrate", cwd=project, env=env).returncode == 0
    assert run_elfctl("creds", "set", "ALPHA_TOKEN", "--team", "alpha", "--stdin", cwd=project,
                      env={**env, "ELFCTL_CREDS_BACKEND": "file", "ELFCTL_MASTER_KEY": "k" * 32},
                      input="v" * 20).returncode == 0
    # with the store up, the stored secret is found: the environment step passes
    up = run_elfctl("infra", "up", "--only", "environment", "--json", cwd=project, env=env)
    assert "credentials missing" not in up.stdout + up.stderr, up.stderr

    realservices.stop_postgres(data)
    down = run_elfctl("infra", "up", "--only", "environment", "--json", cwd=project, env=env)
    assert down.returncode == 3, down.stdout + down.stderr
    error = json.loads(down.stdout)["error"]
    assert error["code"] == "unreachable" and "PostgreSQL at" in error["message"]
    assert "ALPHA_TOKEN" not in down.stdout and "credentials missing" not in down.stderr
