"""`elfctl registry ...` as a user runs it (subprocess, real SQLite and Postgres stores): what it
prints, exit codes, bad input refused with nothing registered, files all-or-none, outside agents
imported from their A2A cards served over real HTTP."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from elfctl.services.actions import trail
from tests.conftest import run_elfctl
from tests.registry.test_gateway_registry import assert_required_present

CARD = {
    "name": "Research Agent", "description": "Finds sources", "version": "2.1.0",
    "supportedInterfaces": [{"url": "http://127.0.0.1:9/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
    "provider": {"organization": "acme", "url": "https://acme.example"},
    "capabilities": {"streaming": True}, "defaultInputModes": ["text/plain"], "defaultOutputModes": ["text/plain"],
    "skills": [{"id": "search", "name": "Search", "description": "Web search", "tags": ["research", "Web Search"]}],
}


def cli(*args, project):
    return run_elfctl(*args, cwd=project)


def names(project, *filters):
    proc = cli("registry", "list", *filters, "--json", project=project)
    assert proc.returncode == 0, proc.stderr
    return [r["name"] for r in json.loads(proc.stdout)]


@pytest.mark.parametrize("args, says", [
    (["Bad_Name", "--url", "http://x:1"], "name 'Bad_Name' is not a DNS-1123 label"),
    (["svc", "--url", "svc.internal:8080"], "--url 'svc.internal:8080' has no scheme://host"),
    (["svc", "--url", "http://x:1", "--ttl", "0s"], "--ttl: '0s' must be longer than 0"),
    (["svc", "--url", "http://x:1", "--ttl", "10 parsecs"], "--ttl: '10 parsecs' is not a duration"),
    (["svc", "--url", "http://x:1", "--deregister-after", "soon"], "--deregister-after: 'soon' is not a duration"),
    (["svc", "--url", "http://x:1", "--capability", "SEO!"], "--capability 'SEO!' is not a capability tag"),
    (["svc", "--url", "http://x:1", "--lifecycle", "beta"], "--lifecycle 'beta' is not a lifecycle"),
    (["svc", "--url", "postgresql://u:hunter2@db:5432/x"], "the URL carries a password"),
    (["svc", "--url", "http://x:1", "--depends-on", "svc"], "depends_on loop svc -> svc"),
])
def test_bad_input_exit_2_one_clear_line_nothing_registered(reg_store, project, args, says):
    proc = cli("registry", "register", *args, project=project)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr and "hint:" in proc.stderr
    assert "hunter2" not in proc.stderr + proc.stdout
    assert names(project) == []
    as_json = cli("registry", "register", *args, "--json", project=project)
    assert as_json.returncode == 2 and json.loads(as_json.stdout)["error"]["code"] == "invalid_input"


def test_register_list_show_heartbeat_deregister(reg_store, project):
    assert cli("registry", "register", "seo", "--url", "http://seo:8080", "-c", "seo", "-c", "copy", "--owner", "growth",
               "--ttl", "30s", "--deregister-after", "10m", project=project).returncode == 0
    assert cli("registry", "register", "pg", "--kind", "database", "--url", "postgresql://db:5432/app",
               project=project).returncode == 0
    assert names(project, "--capability", "seo") == ["seo"]
    assert names(project, "--kind", "database") == ["pg"]
    assert names(project, "--owner", "growth") == ["seo"]
    human = cli("registry", "list", project=project)
    assert "seo" in human.stdout and "passing" in human.stdout
    beat = cli("registry", "heartbeat", "seo", "--status", "fail", "--note", "db down", "--json", project=project)
    assert json.loads(beat.stdout)["status"] == "critical"
    assert names(project, "--status", "critical") == ["seo"]
    shown = json.loads(cli("registry", "show", "seo", "--json", project=project).stdout)
    assert (shown["entry"]["reason"], shown["entry"]["ttl_s"]) == ("db down", 30.0)
    assert cli("registry", "heartbeat", "ghost", project=project).returncode == 1
    assert cli("registry", "deregister", "seo", project=project).returncode == 0
    gone = cli("registry", "deregister", "seo", project=project)
    assert gone.returncode == 1 and "no entry 'seo'" in gone.stderr
    assert names(project) == ["pg"]


def test_graph_marks_missing_and_critical_and_exits_1(reg_store, project):
    cli("registry", "register", "db", "--url", "http://db:1", project=project)
    cli("registry", "register", "api", "--url", "http://api:1", "--depends-on", "db", project=project)
    ok = cli("registry", "graph", "--json", project=project)
    assert ok.returncode == 0 and json.loads(ok.stdout)["edges"] == [
        {"from": "api", "to": "db", "status": "passing", "problem": None}]
    cli("registry", "register", "web", "--url", "http://web:1", "--depends-on", "api", "--depends-on", "cache",
        project=project)
    cli("registry", "heartbeat", "db", "--status", "fail", project=project)
    bad = cli("registry", "graph", project=project)
    assert bad.returncode == 1
    assert "api -> db (critical)" in bad.stdout and "web -> cache (missing)" in bad.stdout
    dot = cli("registry", "graph", "--dot", project=project)
    assert dot.stdout.startswith("digraph registry {") and '"web" -> "cache" [color=red, label="missing"]' in dot.stdout
    loop = cli("registry", "register", "db", "--url", "http://db:1", "--depends-on", "web", project=project)
    assert loop.returncode == 2 and "depends_on loop db -> web -> api -> db" in loop.stderr


def test_file_registers_all_or_none(reg_store, project):
    good = project / "services.yaml"
    good.write_text("entries:\n"
                    "  - {name: files, kind: mcp, url: 'http://mcp:9000/mcp', capabilities: [files]}\n"
                    "  - {name: cache, kind: service, url: 'redis://cache:6379', ttl: 30s}\n")
    bad = project / "bad.yaml"
    bad.write_text("- {name: fine, url: 'http://fine:1'}\n- {name: broken, url: 'broken:1'}\n")
    proc = cli("registry", "register", "--file", str(bad), project=project)
    assert proc.returncode == 2 and "entries[1].url" in proc.stderr
    assert names(project) == []
    assert cli("registry", "register", "--file", str(good), project=project).returncode == 0
    assert names(project) == ["cache", "files"]
    # refused by the store half-way (a name another kind holds): the transaction takes the first back
    clash = project / "clash.yaml"
    clash.write_text("- {name: fresh, url: 'http://fresh:1'}\n- {name: files, kind: database, url: 'postgresql://x:1/y'}\n")
    proc = cli("registry", "register", "-f", str(clash), project=project)
    assert proc.returncode == 2 and "'files' is registered already as a mcp" in proc.stderr
    assert names(project) == ["cache", "files"]
    typo = project / "typo.json"
    typo.write_text(json.dumps({"name": "x", "urll": "http://x:1"}))
    proc = cli("registry", "register", "-f", str(typo), project=project)
    assert proc.returncode == 2 and "urll: unknown key" in proc.stderr


class _Cards(BaseHTTPRequestHandler):
    routes: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802
        body = self.routes.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body or b"not found")

    def log_message(self, *args):
        pass


@pytest.fixture
def card_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Cards)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_import_card_v1_then_older_name_and_bad_cards_refused(reg_store, project, card_server):
    from a2a.types import AgentCard
    from google.api import field_behavior_pb2
    from google.protobuf.json_format import ParseDict

    _server, base = card_server
    no_skills = {k: v for k, v in CARD.items() if k != "skills"}
    _Cards.routes = {"/a/.well-known/agent-card.json": json.dumps(CARD).encode(),
                     "/b/.well-known/agent.json": json.dumps({**CARD, "name": "Old Agent"}).encode(),
                     "/c/.well-known/agent-card.json": json.dumps(no_skills).encode(),
                     "/d/.well-known/agent-card.json": b"<html>hello</html>"}
    proc = cli("registry", "import-card", f"{base}/a", "--json", project=project)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert (got["name"], got["kind"], got["url"]) == ("research-agent", "agent", "http://127.0.0.1:9/a2a")
    assert got["capabilities"] == ["research"] and got["card_url"].endswith("/a/.well-known/agent-card.json")
    shown = json.loads(cli("registry", "show", "research-agent", "--json", project=project).stdout)
    assert shown["card"] == CARD
    assert_required_present(ParseDict(shown["card"], AgentCard()), field_behavior_pb2)
    older = cli("registry", "import-card", f"{base}/b", project=project)
    assert older.returncode == 0 and "old-agent" in older.stdout and "agent.json" in older.stdout
    # a card the A2A schema refuses: refused here too, exit 2, nothing registered
    with pytest.raises(AssertionError, match="AgentCard.skills is required"):
        assert_required_present(ParseDict(no_skills, AgentCard()), field_behavior_pb2)
    bad = cli("registry", "import-card", f"{base}/c", project=project)
    assert bad.returncode == 2 and "agent card field skills: missing" in bad.stderr
    assert cli("registry", "import-card", f"{base}/d", project=project).returncode == 2
    nothing = cli("registry", "import-card", f"{base}/none", project=project)
    assert nothing.returncode == 2 and "no agent card at" in nothing.stderr and "HTTP 404" in nothing.stderr
    assert cli("registry", "import-card", "127.0.0.1:1/x", project=project).returncode == 2
    assert cli("registry", "import-card", "http://127.0.0.1:1", project=project).returncode == 3
    assert names(project) == ["old-agent", "research-agent"]


def test_sweep_removes_expired_and_trails_it(reg_store, project):
    import time

    cli("registry", "register", "blip", "--url", "http://b:1", "--ttl", "1s", "--deregister-after", "1s", project=project)
    time.sleep(2.2)  # past its TTL, then past deregister_after in critical
    assert names(project) == []  # gone at read time, before any sweep
    swept = json.loads(cli("registry", "sweep", "--json", project=project).stdout)
    assert swept["removed"] == ["blip"]
    assert json.loads(cli("registry", "sweep", "--json", project=project).stdout)["removed"] == []
    rows = [r for r in trail.recent(reg_store) if r.target == "blip"]
    assert [(r.strategy, r.result) for r in rows] == [("deregister", "deregistered")]
    assert reg_store.query("SELECT name FROM registry_entries") == []
