"""team.yaml's `mcp_servers` resolved: an unknown name fails `team validate` and `deploy` (exit 2,
naming the file), a server missing its credential fails the deploy before anything is built, and the
`mcpServers` document a replica gets carries the server with its secret value."""

from __future__ import annotations

import json

from tests.mcp.conftest import stdio_command


def team_with(elf, project, servers: str) -> None:
    elf("team", "new", "research")
    path = project / "teams" / "research" / "team.yaml"
    text = path.read_text()
    assert "mcp_servers: []" in text
    path.write_text(text.replace("mcp_servers: []", f"mcp_servers: [{servers}]"))


def deployments(elf) -> list:
    return json.loads(elf("deployments", "--json").stdout)


def test_unknown_server_fails_validate_and_deploy_exit_2(elf, project):
    team_with(elf, project, "files")
    proc = elf("team", "validate", rc=2)
    assert "team.yaml: mcp_servers: 'files' is not a declared MCP server" in proc.stderr
    assert "elfctl mcp add files" in proc.stderr and "Traceback" not in proc.stderr
    dep = elf("deploy", "research", rc=2)
    assert "mcp_servers: 'files' is not a declared MCP server" in dep.stderr
    assert deployments(elf) == []
    elf("mcp", "add", "files", "--command", stdio_command("stdio"))
    assert "1 team(s) valid" in elf("team", "validate").stdout


def test_server_missing_its_credential_fails_the_deploy_before_building(elf, project):
    elf("mcp", "add", "vault", "--command", stdio_command("secret", "0" * 64, "/dev/null"),
        "--secret", "MCP_TEST_TOKEN=RESEARCH_VAULT_TOKEN")
    team_with(elf, project, "vault")
    elf("team", "validate")  # declared: the file is valid; the credential is the deploy's business
    proc = elf("deploy", "research", rc=2)
    assert "mcp_servers: vault needs config: not set: RESEARCH_VAULT_TOKEN" in proc.stderr
    assert "elfctl creds set RESEARCH_VAULT_TOKEN" in proc.stderr
    assert deployments(elf) == []


def test_the_mcp_servers_document_carries_command_env_and_url_headers(elf, project, mcp_env):
    from elfctl.adapters import team_files
    from elfctl.app import App
    from elfctl.output import Output
    from elfctl.services.deploy import mcp_hooks
    from elfctl.services.mcp import app as mcp_app

    elf("mcp", "add", "vault", "--command", stdio_command("secret", "0" * 64, "/dev/null"),
        "--secret", "MCP_TEST_TOKEN=RESEARCH_VAULT_TOKEN", "--env", "MODE=fast")
    elf("mcp", "add", "web", "--url", "http://search:8080/mcp", "--secret-header", "Authorization=SEARCH_AUTH")
    elf("creds", "set", "RESEARCH_VAULT_TOKEN", "--team", "research", "--stdin", input="tok-123")
    elf("creds", "set", "SEARCH_AUTH", "--stdin", input="Bearer abc")
    team_with(elf, project, "vault, web")
    app = App(Output(), cwd=project)
    try:
        spec = team_files.find(app.teams_dir, "research")
        mcp_hooks.before_build(app, spec)  # everything set: no error
        doc = mcp_hooks.mcp_servers_doc(app, spec, mcp_app.resolver(app))
    finally:
        app.close()
    vault = doc["mcpServers"]["vault"]
    assert vault["env"] == {"MODE": "fast", "MCP_TEST_TOKEN": "tok-123"} and vault["args"][-3] == "secret"
    assert doc["mcpServers"]["web"] == {"url": "http://search:8080/mcp", "headers": {"Authorization": "Bearer abc"}}
