"""`elfctl mcp check` against real MCP servers written with the SDK (tests/mcp/servers.py): one over
stdio, one over streamable HTTP, one needing a secret in its environment, one crashing during
initialize, one accepting and never answering, one answering 401. What a user sees: verdicts, exit
codes, the registry's status, the actions trail; and a canary secret found nowhere."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid

from tests.mcp.conftest import stdio_command

TIMEOUT = 30  # the machine under test is loaded: an SDK server takes seconds just to import


def by_name(proc) -> dict[str, dict]:
    return {v["name"]: v for v in json.loads(proc.stdout)["servers"]}


def test_every_kind_of_server_gets_its_verdict_and_a_hung_one_blocks_nobody(elf, served, project, tmp_path):
    http, deny, hang_http = served("http"), served("deny"), served("hanghttp")
    canary = f"canary-{uuid.uuid4().hex}"
    dump = tmp_path / "secret-env.json"
    elf("mcp", "add", "echo", "--command", stdio_command("stdio"))
    elf("mcp", "add", "web", "--url", http.url)
    elf("mcp", "add", "vault", "--command", stdio_command("secret", hashlib.sha256(canary.encode()).hexdigest(), str(dump)),
        "--secret", "MCP_TEST_TOKEN=MCP_CANARY")
    elf("mcp", "add", "crash", "--command", stdio_command("crash"))
    elf("mcp", "add", "hang", "--command", stdio_command("hang"))
    elf("mcp", "add", "hang-http", "--url", hang_http.url)
    elf("mcp", "add", "deny", "--url", deny.url)
    gone = tmp_path / "gone-server"
    gone.write_text("#!/bin/sh\nexit 0\n")
    gone.chmod(0o755)
    elf("mcp", "add", "gone", "--command", str(gone))
    gone.unlink()  # the command existed when added, not any more

    # The secret is not set yet: needs-config naming the credential, and the server is not started.
    first = elf("mcp", "check", "vault", "--json", rc=1)
    v = by_name(first)["vault"]
    assert v["verdict"] == "needs-config" and v["missing"] == ["MCP_CANARY"] and not dump.exists()

    elf("creds", "set", "MCP_CANARY", "--stdin", input=canary)
    started = time.monotonic()
    proc = elf("mcp", "check", "--json", "--timeout", str(TIMEOUT), rc=1)
    elapsed = time.monotonic() - started
    got = by_name(proc)
    assert list(got) == sorted(got)  # every server, by name
    for name in ("echo", "web", "vault"):
        assert got[name]["verdict"] == "ready", got[name]
        assert got[name]["counts"] == {"tools": 2, "resources": 1, "prompts": 1}
        assert got[name]["server"]["protocol_version"]
    assert got["echo"]["server"]["name"] == "test-stdio" and got["web"]["server"]["name"] == "test-http"
    assert got["crash"]["verdict"] == "unavailable" and "handshake failed" in got["crash"]["reason"]
    assert "boom: cannot load the model index" in got["crash"]["stderr"]
    for name in ("hang", "hang-http"):
        assert got[name]["verdict"] == "unavailable" and f"no answer within {TIMEOUT}s" in got[name]["reason"]
    assert got["deny"]["verdict"] == "needs-config" and "HTTP 401" in got["deny"]["reason"]
    assert got["gone"]["verdict"] == "unavailable" and "not found" in got["gone"]["reason"]
    # Concurrent: the two hung servers each took the timeout, the whole run not the sum of them.
    assert elapsed < 2 * TIMEOUT + 30, elapsed

    # The secret reached the server through its environment with only the SDK's safe variables beside it.
    names = set(json.loads(dump.read_text()))
    assert "MCP_TEST_TOKEN" in names
    assert not {n for n in names if n.startswith("ELFCTL_")}, names  # the parent's secrets stay home
    from mcp.client.stdio import DEFAULT_INHERITED_ENV_VARS

    assert names <= {"MCP_TEST_TOKEN", *DEFAULT_INHERITED_ENV_VARS, "LC_CTYPE"}, names - set(DEFAULT_INHERITED_ENV_VARS)

    # The registry keeps the verdicts: failing servers critical, a 401 warning, the ready ones passing.
    listed = {r["name"]: r["status"] for r in json.loads(elf("registry", "list", "--kind", "mcp", "--json").stdout)}
    assert listed == {"echo": "passing", "web": "passing", "vault": "passing", "crash": "critical", "hang": "critical",
                      "hang-http": "critical", "gone": "critical", "deny": "warning"}
    human = elf("mcp", "check", "crash", "echo", rc=1)
    assert "crash: unavailable" in human.stdout and "stderr: boom" in human.stdout and "echo: ready" in human.stdout
    assert "Traceback" not in human.stderr

    # A status change is a row in the actions trail.
    from elfctl import config
    from elfctl.bootstrap import open_store
    from elfctl.services.actions import trail

    store = open_store(config.load(cwd=project), os.environ["ELFCTL_STORE_URL"])
    try:
        acts = [a for a in trail.recent(store) if a.target == "crash"]
        assert any("-> critical" in a.trigger and a.actor == "mcp check" for a in acts), acts
    finally:
        store.close()

    # The canary: in no output, log, store row or file elfctl wrote.
    seen = "\n".join(elf.outputs)
    assert canary not in seen
    for f in project.rglob("*"):
        if f.is_file():
            assert canary.encode() not in f.read_bytes(), f
    assert canary not in dump.read_text()


def test_exit_0_when_all_ready_and_3_when_none_reachable(elf, served):
    http = served("http")
    elf("mcp", "add", "web", "--url", http.url)
    ok = elf("mcp", "check", "--json", rc=0)
    assert by_name(ok)["web"]["verdict"] == "ready"
    elf("mcp", "add", "down", "--url", "http://127.0.0.1:9/mcp")
    none = elf("mcp", "check", "down", "--json", rc=3)
    body = json.loads(none.stdout)
    assert body["error"]["code"] == "unreachable"
    human = elf("mcp", "check", "down", rc=3)
    assert "down: unavailable: connection to http://127.0.0.1:9/mcp refused" in human.stdout


def test_health_has_an_mcp_component_per_server(elf, served):
    http = served("http")
    elf("mcp", "add", "web", "--url", http.url)
    elf("mcp", "add", "down", "--url", "http://127.0.0.1:9/mcp")
    proc = elf("health", "--component", "mcp:web", "--component", "mcp:down", "--timeout", str(TIMEOUT), "--json", rc=1)
    checks = json.loads(proc.stdout)["checks"]
    assert checks["mcp:web"][0]["status"] == "pass" and "test-http" in checks["mcp:web"][0]["output"]
    assert checks["mcp:down"][0]["status"] == "fail" and "refused" in checks["mcp:down"][0]["output"]
    listed = {r["name"]: r["status"] for r in json.loads(elf("registry", "list", "--kind", "mcp", "--json").stdout)}
    assert listed == {"web": "passing", "down": "critical"}


def _children(pid: int) -> list[int]:
    from pathlib import Path

    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _gone(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_kill_9_mid_check_leaves_no_server_running(elf, project, mcp_env):
    """elfctl killed while a stdio server is starting: the server sees its stdin close and exits."""
    import subprocess
    import sys

    elf("mcp", "add", "echo", "--command", stdio_command("stdio"))
    proc = subprocess.Popen([sys.executable, "-m", "elfctl", "mcp", "check", "--timeout", "120"], cwd=project,
                            env={**os.environ, **mcp_env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    servers: list[int] = []
    while not servers and time.monotonic() < deadline and proc.poll() is None:
        servers = _children(proc.pid)
        time.sleep(0.05)
    assert servers, "the server never started"
    proc.kill()
    proc.wait(10)
    deadline = time.monotonic() + 60
    while not all(_gone(p) for p in servers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(p) for p in servers), [open(f"/proc/{p}/cmdline").read() for p in servers if not _gone(p)]
