"""A team that names MCP servers in team.yaml gets them, on the real Docker engine, as a read-only
`mcpServers` file whose path is in ELFCTL_MCP_CONFIG, with the secret header's value from the
credential store; the value is in no container setting, store row or output; a rotated credential
rolls out, an unchanged one does not."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests.conftest import run_elfctl
from tests.deploy.conftest import docker_env, engine, make_team, registry_address, team_name  # noqa: F401 (fixtures)
from tests.mcp.conftest import PASS, stdio_command


def test_replicas_get_a_read_only_mcp_servers_file(project, docker_env, team_name, engine, tmp_path):  # noqa: F811
    secrets_dir = Path("/dev/shm") / f"elfctl-test-{uuid.uuid4().hex[:8]}"
    env = {**docker_env, "ELFCTL_STORE_URL": f"sqlite:///{project / '.elf' / 'elf.db'}", "ELFCTL_MASTER_KEY": PASS,
           "ELFCTL_CREDS_BACKEND": "file", "ELFCTL_DEPLOY_SECRETS_DIR": str(secrets_dir)}
    canary, rotated = f"canary-{uuid.uuid4().hex}", f"rotated-{uuid.uuid4().hex}"
    prefix = docker_env["ELFCTL_DEPLOY_PREFIX"]

    def elf(*args, input=None, rc=0):
        proc = run_elfctl(*args, cwd=project, env=env, input=input, timeout=300)
        assert proc.returncode == rc, proc.stderr
        assert canary not in proc.stdout + proc.stderr and rotated not in proc.stdout + proc.stderr
        return proc

    def apps():
        return engine.containers({"elfctl.prefix": prefix, "elfctl.team": team_name, "elfctl.role": "app"},
                                 all_=False)

    folder = make_team(project, env, team_name)
    elf("mcp", "add", "search", "--url", "http://search.internal:8080/mcp", "--header", "X-Region=eu",
        "--secret-header", "Authorization=SEARCH_AUTH")
    elf("mcp", "add", "files", "--command", stdio_command("stdio"), "--env", "ROOT=/data")
    yaml_path = folder / "team.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("mcp_servers: []", "mcp_servers: [search, files]"))
    elf("creds", "set", "SEARCH_AUTH", "--stdin", input=canary)
    try:
        first = json.loads(elf("deploy", team_name, "--json").stdout)
        assert first["state"] == "switched"
        (c,) = apps()
        environment = engine.exec(c["Id"], ["env"])[1].splitlines()
        assert "ELFCTL_MCP_CONFIG=/run/secrets/mcp.json" in environment
        assert canary not in "\n".join(environment)
        code, text = engine.exec(c["Id"], ["cat", "/run/secrets/mcp.json"])
        doc = json.loads(text)
        assert code == 0 and doc["mcpServers"]["search"] == {
            "url": "http://search.internal:8080/mcp", "headers": {"X-Region": "eu", "Authorization": canary}}
        assert doc["mcpServers"]["files"]["env"] == {"ROOT": "/data"}
        assert doc["mcpServers"]["files"]["args"][-1] == "stdio"
        info = engine.inspect(c["Id"])
        assert canary not in json.dumps(info)
        (mount,) = [m for m in info["Mounts"] if m["Destination"] == "/run/secrets/mcp.json"]
        assert not mount["RW"] and mount["Source"].startswith(str(secrets_dir))  # in memory, read-only

        # Unchanged servers and credentials: nothing to roll out. A rotation rolls out the new value.
        assert json.loads(elf("deploy", team_name, "--json").stdout)["state"] == "unchanged"
        elf("creds", "rotate", "SEARCH_AUTH", "--stdin", input=rotated)
        again = json.loads(elf("deploy", team_name, "--json").stdout)
        assert again["state"] == "switched"
        serving = [a for a in apps() if a["Labels"]["elfctl.revision"] == str(again["revision"])]
        doc = json.loads(engine.exec(serving[0]["Id"], ["cat", "/run/secrets/mcp.json"])[1])
        assert doc["mcpServers"]["search"]["headers"]["Authorization"] == rotated

        elf("deployments", team_name, "--json")
        from elfctl import config
        from elfctl.bootstrap import open_store

        store = open_store(config.load(cwd=project), env["ELFCTL_STORE_URL"])
        try:
            for table in store.tables():
                rows = repr(store.query(f"SELECT * FROM {table}"))
                assert canary not in rows and rotated not in rows, table
        finally:
            store.close()
    finally:
        run_elfctl("infra", "down", cwd=project, env=env, timeout=300)
