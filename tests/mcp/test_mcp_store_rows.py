"""On both store dialects: what `mcp add` and `mcp check` write holds the credential's name and the
verdict, and the canary value given to a secret-needing server is in no row of any table."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from tests.conftest import run_elfctl
from tests.mcp.conftest import PASS, stdio_command


@pytest.fixture
def migrated(store_url, open_store, project, monkeypatch):
    from elfctl import config
    from elfctl.bootstrap import migrations_dir
    from elfctl.services.platform import migrate

    env = {"ELFCTL_STORE_URL": store_url, "ELFCTL_MASTER_KEY": PASS, "ELFCTL_CREDS_BACKEND": "file"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    store = open_store(store_url)
    migrate.migrate(store, migrations_dir(config.load(cwd=project)))
    return store, env


def test_canary_in_no_store_row(migrated, project, tmp_path):
    store, env = migrated
    canary = f"canary-{uuid.uuid4().hex}"

    def elf(*args, rc=0, input=None):
        proc = run_elfctl(*args, cwd=project, env=env, input=input, timeout=180)
        assert proc.returncode == rc, proc.stderr
        assert canary not in proc.stdout + proc.stderr
        return proc

    elf("mcp", "add", "vault", "--command", stdio_command("secret", hashlib.sha256(canary.encode()).hexdigest(),
                                                          str(tmp_path / "env.json")),
        "--secret", "MCP_TEST_TOKEN=MCP_CANARY")
    elf("creds", "set", "MCP_CANARY", "--stdin", input=canary)
    got = json.loads(elf("mcp", "check", "--json", "--timeout", "60").stdout)["servers"]
    assert got[0]["verdict"] == "ready", got
    row = store.query("SELECT kind, metadata, last_status FROM registry_entries WHERE name = 'vault'")[0]
    assert row["kind"] == "mcp" and row["last_status"] == "passing"
    assert json.loads(row["metadata"])["secrets"] == {"MCP_TEST_TOKEN": "MCP_CANARY"}
    for table in sorted(store.tables()):
        for r in store.query(f"SELECT * FROM {table}"):  # noqa: S608 (names from the store itself)
            assert canary not in json.dumps(r, default=str), table
