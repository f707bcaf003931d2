"""The resource monitor's mcp_server type reads the same handshake as `mcp check`: a ready server is
healthy, one that crashes during initialize critical, and no server at all "not configured"."""

from __future__ import annotations

import json

from tests.mcp.conftest import stdio_command


def _mcp_type(proc) -> dict:
    return json.loads(proc.stdout)["resources"]["mcp_server"]


def test_resources_reads_each_registered_mcp_server(elf, served, mcp_env):
    # A stdio server is a new Python process importing the SDK: seconds here, past the default 3 s.
    mcp_env["ELFCTL_RESOURCES_TIMEOUT_S"] = "60"
    none = _mcp_type(elf("resources", "--json", rc=None))
    assert none["status"] == "not_configured"
    http = served("http")
    elf("mcp", "add", "echo", "--command", stdio_command("stdio"))
    elf("mcp", "add", "web", "--url", http.url)
    ok = _mcp_type(elf("resources", "--json", rc=None))
    assert ok["status"] == "healthy", ok
    assert {r["subject"]: r["status"] for r in ok["readings"]} == {"echo": "healthy", "web": "healthy"}
    elf("mcp", "add", "crash", "--command", stdio_command("crash"))
    bad = _mcp_type(elf("resources", "--json", rc=None))
    readings = {r["subject"]: r for r in bad["readings"]}
    assert bad["status"] == "critical" and readings["crash"]["status"] == "critical"
    assert readings["crash"]["detail"].startswith("unavailable")
