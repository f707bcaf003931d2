"""`elfctl mcp add | list | show | rm | export` as a user runs them: entries of kind mcp in the same
registry, server.json (schema 2025-12-11) read and written, bad input refused with nothing stored."""

from __future__ import annotations

import json

import pytest

from elfctl.domain import mcp_server_json as sj
from tests.mcp.conftest import stdio_command

GOOD = {
    "$schema": sj.SCHEMA, "name": "io.github.acme/weather", "description": "Forecasts", "version": "1.2.0",
    "packages": [{"registryType": "npm", "identifier": "@acme/weather-mcp", "version": "1.2.0",
                  "runtimeHint": "npx", "transport": {"type": "stdio"},
                  "packageArguments": [{"type": "positional", "value": "--metric"}],
                  "environmentVariables": [{"name": "WEATHER_KEY", "isRequired": True, "isSecret": True},
                                           {"name": "UNITS", "default": "metric"}]}],
}
REMOTE = {"name": "io.github.acme/search", "version": "2.0.0",
          "remotes": [{"type": "streamable-http", "url": "https://mcp.acme.dev/mcp",
                       "headers": [{"name": "Authorization", "isRequired": True, "isSecret": True},
                                   {"name": "X-Region", "value": "eu"}]}]}


def names(elf) -> list[str]:
    return [r["name"] for r in json.loads(elf("mcp", "list", "--json").stdout)]


def _without(key):
    doc = json.loads(json.dumps(GOOD))
    del doc[key]
    return doc


def _pkg(**change):
    doc = json.loads(json.dumps(GOOD))
    doc["packages"][0].update(change)
    if change.get("transport") is None and "transport" in change:
        del doc["packages"][0]["transport"]
    return doc


@pytest.mark.parametrize("doc, says", [
    (_without("name"), "server.json.name: missing"),
    (_without("version"), "server.json.version: missing"),
    ({**GOOD, "version": "latest"}, "server.json.version 'latest' is not a version"),
    ({**GOOD, "name": "weather"}, "server.json.name 'weather' has no namespace"),
    (_pkg(transport=None), "server.json.packages[0].transport: missing"),
    (_pkg(transport={"type": "carrier-pigeon"}), "packages[0].transport.type 'carrier-pigeon' is not a transport"),
    ({**REMOTE, "remotes": [{"type": "sse", "url": "mcp.acme.dev/sse"}]}, "server.json.remotes[0].url 'mcp.acme.dev/sse' has no http(s)://host"),
])
def test_bad_server_json_exit_2_names_the_field_nothing_stored(elf, project, doc, says):
    path = project / "server.json"
    path.write_text(json.dumps(doc))
    proc = elf("mcp", "add", "--from", str(path), rc=2)
    assert says.replace("server.json", str(path)) in proc.stderr, proc.stderr
    assert "hint:" in proc.stderr and "Traceback" not in proc.stderr
    assert names(elf) == []


@pytest.mark.parametrize("args, says", [
    (["x", "--url", "mcp.acme.dev/mcp"], "--url 'mcp.acme.dev/mcp' has no http(s)://host"),
    (["x", "--command", "no-such-mcp-server --stdio"], "--command: 'no-such-mcp-server' is not an executable"),
    (["x", "--command", ""], "--command is empty"),
    (["x", "--command", "true", "--secret", "TOKEN"], "--secret 'TOKEN': expected NAME=VALUE"),
    (["x", "--url", "http://h:1/mcp", "--secret-header", "Bad Header=CRED"], "--secret-header 'Bad Header'"),
    (["x", "--url", "http://u:pw@h:1/mcp"], "the URL carries a password"),
    (["x"], "give one of --command, --url or --from"),
    (["Bad_Name", "--url", "http://h:1/mcp"], "name 'Bad_Name' is not a DNS-1123 label"),
])
def test_bad_flags_exit_2_one_clear_line_nothing_stored(elf, args, says):
    proc = elf("mcp", "add", *args, rc=2)
    assert says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "pw@" not in proc.stderr + proc.stdout
    assert json.loads(elf("mcp", "add", *args, "--json", rc=2).stdout)["error"]["code"] == "invalid_input"
    assert names(elf) == []


def test_add_from_server_json_show_export_round_trip_rm(elf, project):
    path = project / "server.json"
    path.write_text(json.dumps(GOOD))
    added = json.loads(elf("mcp", "add", "--from", str(path), "--secret", "WEATHER_KEY=ACME_WEATHER", "--json").stdout)
    assert added["name"] == "weather" and added["target"] == "npx -y @acme/weather-mcp@1.2.0 --metric"
    shown = json.loads(elf("mcp", "show", "weather", "--json").stdout)
    assert shown["secrets"] == {"WEATHER_KEY": "ACME_WEATHER"} and shown["env"] == {"UNITS": "metric"}
    # The same registry: `registry list --kind mcp` lists it.
    reg = json.loads(elf("registry", "list", "--kind", "mcp", "--json").stdout)
    assert [r["name"] for r in reg] == ["weather"] and reg[0]["kind"] == "mcp"
    exported = json.loads(elf("mcp", "export", "weather").stdout)
    assert exported["name"] == "io.github.acme/weather" and exported["version"] == "1.2.0"
    pkg = exported["packages"][0]
    assert pkg["identifier"] == "@acme/weather-mcp" and pkg["transport"] == {"type": "stdio"}
    assert {v["name"]: v.get("isSecret") for v in pkg["environmentVariables"]} == {"UNITS": False, "WEATHER_KEY": True}
    # What is exported reads back as the same server.
    again = project / "again.json"
    elf("mcp", "export", "weather", "--out", str(again))
    assert sj.parse(json.loads(again.read_text()))[1]["args"] == ["-y", "@acme/weather-mcp@1.2.0", "--metric"]
    elf("mcp", "rm", "weather")
    assert names(elf) == []
    missing = elf("mcp", "rm", "weather", rc=1)
    assert "no server 'weather'" in missing.stderr


def test_remote_server_json_needs_its_secret_header(elf, project):
    path = project / "remote.json"
    path.write_text(json.dumps(REMOTE))
    elf("mcp", "add", "--from", str(path))
    proc = elf("mcp", "check", "search", "--json", rc=1)
    v = json.loads(proc.stdout)["servers"][0]
    assert v["verdict"] == "needs-config" and v["missing"] == ["Authorization"]
    elf("mcp", "add", "--from", str(path), "--secret-header", "Authorization=ACME_SEARCH_TOKEN")
    v = json.loads(elf("mcp", "check", "search", "--json", rc=1).stdout)["servers"][0]
    assert v["verdict"] == "needs-config" and v["missing"] == ["ACME_SEARCH_TOKEN"]  # named, never set


def test_a_name_held_by_another_kind_is_refused(elf):
    elf("registry", "register", "pg", "--kind", "database", "--url", "postgresql://db:5432/app")
    proc = elf("mcp", "add", "pg", "--command", stdio_command("stdio"), rc=2)
    assert "registered already as a database" in proc.stderr


def test_check_refuses_a_bad_timeout_and_names_an_unknown_server(elf):
    proc = elf("mcp", "check", "--timeout", "0", rc=2)
    assert "--timeout" in proc.stderr and "0.0 is not a number from 0.1 to 3,600" in proc.stderr
    assert "Traceback" not in proc.stderr
    missing = elf("mcp", "check", "nosuch", "--json", rc=1)
    assert json.loads(missing.stdout)["error"]["code"] == "not_found"
    assert json.loads(elf("mcp", "check", "--json").stdout) == {"servers": []}  # nothing declared: nothing failed


@pytest.mark.parametrize("doc, says", [
    ([1, 2], "must be a JSON object"),
    ({**GOOD, "packages": [42]}, "packages[0]: must be an object"),
    ({**GOOD, "packages": "npx"}, "packages/remotes: must be lists"),
    (_pkg(environmentVariables=[{"name": "BAD NAME"}]), "environmentVariables[0].name 'BAD NAME' is not a variable name"),
    (_pkg(runtimeHint="sh"), "runtimeHint 'sh' is not known"),
])
def test_hostile_server_json_is_refused_by_field(elf, project, doc, says):
    path = project / "server.json"
    path.write_text(json.dumps(doc))
    proc = elf("mcp", "add", "x", "--from", str(path), rc=2)
    assert says in proc.stderr and "Traceback" not in proc.stderr
    assert names(elf) == []
