"""The registry through real gateway processes (uvicorn) on one real Postgres store: discovery with
a team key, a team's heartbeat of itself (403 for another's), agent cards checked with a2a-sdk's
types, and `elfctl.registry` in a process that has only the variables deploy injects."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from elfctl.domain.registry import Entry
from elfctl.services.gateway import keys
from elfctl.services.registry import entries as reg


def call(url: str, key: str | None = None, method: str = "GET", body: dict | None = None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def pg_store(pg_url, open_store, project, monkeypatch):
    from elfctl import config
    from elfctl.bootstrap import migrations_dir
    from elfctl.services.platform import migrate

    monkeypatch.setenv("ELFCTL_STORE_URL", pg_url)
    store = open_store(pg_url)
    migrate.migrate(store, migrations_dir(config.load(cwd=project)))
    return pg_url, store


def _two_teams(store):
    reg.register(store, Entry("seo", kind="team", url="http://elfctl-seo:8080", capabilities=("seo",),
                              endpoints={"network": "http://elfctl-seo:8080", "host": "http://127.0.0.1:18080"},
                              owner="growth", ttl_s=60, source="deploy",
                              metadata={"revision": 3, "skills": [{"id": "audit", "name": "SEO audit",
                                                                   "description": "Audits a page", "tags": ["seo"]}]}))
    reg.register(store, Entry("writer", kind="team", url="http://elfctl-writer:8080", capabilities=("copywriting",),
                              depends_on=("seo",), ttl_s=60, source="deploy"))
    return keys.mint(store, "seo"), keys.mint(store, "writer")


def test_two_gateways_on_one_postgres_store_give_the_same_answers(pg_store, gateways):
    url, store = pg_store
    seo_key, writer_key = _two_teams(store)
    a, b = gateways(url), gateways(url)
    found_a = call(a.url + "/v1/registry?capability=seo", writer_key)
    found_b = call(b.url + "/v1/registry?capability=seo", seo_key)
    assert found_a[0] == found_b[0] == 200
    assert [e["name"] for e in found_a[1]["data"]] == ["seo"]
    assert found_a[1] == found_b[1]
    # a heartbeat through one gateway is seen through the other at once
    assert call(a.url + "/v1/registry/seo/heartbeat", seo_key, "PUT", {"status": "warn", "note": "slow"})[0] == 200
    status, body = call(b.url + "/v1/registry?status=warning", writer_key)
    assert (status, [e["name"] for e in body["data"]]) == (200, ["seo"])
    assert call(b.url + "/v1/registry/seo", writer_key)[1]["reason"] == "slow"
    # no key: 401; a filter that is not one: 400
    assert call(a.url + "/v1/registry")[0] == 401
    assert call(a.url + "/v1/registry?colour=red", seo_key)[0] == 400


def test_a_team_may_heartbeat_only_itself(pg_store, gateways):
    url, store = pg_store
    seo_key, writer_key = _two_teams(store)
    g = gateways(url)
    status, body = call(g.url + "/v1/registry/seo/heartbeat", writer_key, "PUT", {"status": "fail"})
    assert status == 403 and "may heartbeat only its own entry" in body["error"]["message"]
    assert reg.get(store, "seo").status == "passing"  # nothing changed
    assert call(g.url + "/v1/registry/seo/heartbeat", seo_key, "PUT", {"status": "sideways"})[0] == 400
    assert call(g.url + "/v1/registry/seo/heartbeat", seo_key, "PUT", {"status": "fail", "note": "db down"})[0] == 200
    assert reg.get(store, "seo").status == "critical"


def test_agent_cards_are_valid_a2a_v1_cards(pg_store, gateways):
    from a2a.types import AgentCard
    from google.api import field_behavior_pb2
    from google.protobuf.json_format import ParseDict

    url, store = pg_store
    _two_teams(store)
    g = gateways(url)
    status, card = call(g.url + "/teams/seo/.well-known/agent-card.json")  # public, as well-known documents are
    assert status == 200
    parsed = ParseDict(card, AgentCard())  # unknown fields or wrong types raise
    assert parsed.name == "seo" and parsed.supported_interfaces[0].url == "http://elfctl-seo:8080"
    assert [s.id for s in parsed.skills] == ["audit"]
    assert_required_present(parsed, field_behavior_pb2)
    assert call(g.url + "/teams/nobody/.well-known/agent-card.json")[0] == 404


def assert_required_present(message, field_behavior_pb2) -> None:
    """Every field the A2A proto marks REQUIRED is set, recursively (protobuf itself does not check)."""
    for f in message.DESCRIPTOR.fields:
        required = field_behavior_pb2.REQUIRED in f.GetOptions().Extensions[field_behavior_pb2.field_behavior]
        value = getattr(message, f.name)
        if f.message_type is not None and f.is_repeated and not f.message_type.GetOptions().map_entry:
            assert not required or len(value), f"{message.DESCRIPTOR.name}.{f.name} is required"
            for item in value:
                assert_required_present(item, field_behavior_pb2)
        elif f.message_type is not None and not f.message_type.GetOptions().map_entry:
            assert not required or message.HasField(f.name), f"{message.DESCRIPTOR.name}.{f.name} is required"
            if message.HasField(f.name):
                assert_required_present(value, field_behavior_pb2)
        elif required:
            assert value, f"{message.DESCRIPTOR.name}.{f.name} is required"


def test_elfctl_registry_inside_a_container_uses_the_gateway(pg_store, gateways, tmp_path):
    url, store = pg_store
    seo_key, writer_key = _two_teams(store)
    g = gateways(url)
    code = ("from elfctl import registry, errors\n"
            "import json\n"
            "found = registry.find(capability='seo')\n"
            "beat = registry.heartbeat('writer', status='warn', note='busy')\n"
            "try:\n    registry.heartbeat('seo')\n    other = 'accepted'\n"
            "except errors.ElfError as exc:\n    other = exc.code\n"
            "print(json.dumps({'found': [e['name'] for e in found], 'beat': beat['status'], 'other': other,"
            " 'missing': registry.get('ghost')}))\n")
    # a folder with no project and no store URL: only the gateway can answer
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path), "OPENAI_BASE_URL": g.url + "/v1",
           "OPENAI_API_KEY": writer_key}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"found": ["seo"], "beat": "warning", "other": "forbidden", "missing": None}
    assert reg.get(store, "writer").reason == "busy"


def test_hostile_requests_change_nothing(pg_store, gateways):
    url, store = pg_store
    seo_key, _writer_key = _two_teams(store)
    g = gateways(url)
    assert call(g.url + "/v1/registry/..%2Fseo/heartbeat", seo_key, "PUT", {})[0] in (403, 404)  # never 200
    assert call(g.url + "/v1/registry/Bad_Name", seo_key)[0] == 400
    assert call(g.url + "/v1/registry?capability=x%27%20OR%201%3D1--", seo_key)[0] == 400
    assert call(g.url + "/v1/registry/seo/heartbeat", seo_key, "PUT", ["pass"])[0] == 400
    assert call(g.url + "/v1/registry/seo/heartbeat", seo_key, "PUT", {"status": "pass", "evil": 1})[0] == 400
    status, body = call(g.url + "/v1/registry/seo/heartbeat", seo_key, "PUT", {"status": "warn", "note": "x" * 100_000})
    assert status == 200 and len(body["note"]) == 500  # a note is one line, not a payload store
    assert [e.name for e in reg.find(store)] == ["seo", "writer"]
