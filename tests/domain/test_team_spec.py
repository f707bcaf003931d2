from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from elfctl.adapters.team_files import find, load
from elfctl.domain.team import parse
from elfctl.errors import InputError

P = Path("teams/mkt/team.yaml")


def test_full_spec_parses():
    spec = parse(yaml.safe_load("""
name: mkt
port: 9000
replicas: 2
health: {path: /healthz, success_threshold: 3}
env: {LOG_LEVEL: debug, FLAG: true}
secrets: [OPENAI_API_KEY]
resources: {cpu: 500m, memory: 256Mi}
llm: {model: gpt-4o, fallbacks: [gpt-4o-mini], budget: {daily_usd: 10, hard_action: downgrade}, gateway: false}
mcp_servers: [search]
"""), P, "mkt")
    assert spec.llm.gateway is False  # its own OPENAI_API_KEY: off the LLM gateway
    assert spec.port == 9000 and spec.health.path == "/healthz" and spec.health.success_threshold == 3
    assert spec.env == {"LOG_LEVEL": "debug", "FLAG": "true"}
    assert spec.llm.fallbacks == ("gpt-4o-mini",) and spec.llm.budget.hard_action == "downgrade"


@pytest.mark.parametrize("doc, field, fix", [
    ({"name": "Bad_Name"}, "name", "DNS-1123"),
    ({"name": "mkt", "prot": 80}, "prot", "did you mean 'port'"),
    ({"name": "mkt", "port": 70000}, "port", "1..65535"),
    ({"name": "mkt", "health": {"path": "health"}}, "health.path", "/health"),
    ({"name": "mkt", "secrets": ["lower"]}, "secrets[0]", "UPPER_SNAKE_CASE"),
    ({"name": "mkt", "llm": {"budget": {"hard_action": "explode"}}}, "llm.budget.hard_action", "warn"),
    ({"name": "mkt", "build": {"context": "../../etc"}}, "build.context", "relative"),
    ({"name": "other"}, "name", "set name: mkt"),
    ({"name": "mkt", "secrets_as": "volume"}, "secrets_as", "use env"),
    ({"name": "mkt", "secrets": ["K"], "env": {"K_FILE": "x"}, "secrets_as": "files"}, "env", "remove it"),
    ({"name": "mkt", "llm": {"gateway": "no"}}, "llm.gateway", "gateway: false"),
    ({"name": "mkt", "secrets": ["OPENAI_API_KEY"]}, "secrets", "gateway: false"),
    ({"name": "mkt", "env": {"OPENAI_BASE_URL": "http://x"}}, "env", "remove OPENAI_BASE_URL"),
])
def test_errors_name_file_field_and_fix(doc, field, fix):
    with pytest.raises(InputError) as err:
        parse(doc, P, "mkt")
    assert err.value.message.startswith(f"{P}: {field}:")
    assert fix in err.value.message + " " + err.value.hint


def test_find_suggests_close_team(tmp_path):
    (tmp_path / "marketing-team").mkdir()
    (tmp_path / "marketing-team" / "team.yaml").write_text("name: marketing-team\n")
    assert find(tmp_path, "marketing-team").name == "marketing-team"
    with pytest.raises(InputError) as err:
        find(tmp_path, "marketing-tem")
    assert "no such team" in err.value.message and "did you mean 'marketing-team'" in err.value.hint


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["name", "port", "replicas", "health", "env", "secrets", "llm",
                                        "resources", "build", "mcp_servers", "junk"]), yaml_values))
def test_fuzzed_specs_never_crash(doc):
    doc.setdefault("name", "mkt")
    try:
        parse(doc, P, "mkt")
    except InputError as err:
        assert err.message.startswith(str(P)) and err.hint


def test_bad_yaml_names_line(tmp_path):
    path = tmp_path / "mkt" / "team.yaml"
    path.parent.mkdir()
    path.write_text("name: mkt\nport: [1,\n")
    with pytest.raises(InputError, match="not valid YAML at line"):
        load(path)


def test_secrets_as_files_names_each_path():
    spec = parse({"name": "mkt", "secrets": ["A_KEY", "B_KEY"], "secrets_as": "files"}, P, "mkt")
    assert spec.secret_files() == {"A_KEY": "/run/secrets/A_KEY", "B_KEY": "/run/secrets/B_KEY"}
    assert parse({"name": "mkt", "secrets": ["A_KEY"]}, P, "mkt").secret_files() == {}


@pytest.mark.parametrize("resources, field, shown", [
    ({"memory": "99999999999999Gi"}, "memory", "99999999999999Gi is out of range"),
    ({"memory": "1Ki"}, "memory", "1Ki is out of range"),
    ({"cpu": 99999999999}, "cpu", "99999999999 is out of range"),
    ({"cpu": "0"}, "cpu", "0 is out of range"),
    ({"cpu": "1.5x"}, "cpu", "'1.5x' is not a cpu quantity"),
])
def test_resources_out_of_what_docker_and_kubernetes_take(resources, field, shown):
    with pytest.raises(InputError) as err:
        parse({"name": "mkt", "resources": resources}, P, "mkt")
    assert err.value.message.startswith(f"{P}: resources.{field}: {shown}")


def test_resources_at_the_edges_are_exact():
    from elfctl.domain.team import memory_bytes, nano_cpus

    spec = parse({"name": "mkt", "resources": {"memory": "8388607Ti", "cpu": "9223372036"}}, P, "mkt")
    assert memory_bytes(spec.resources.memory) == 8388607 * 2**40 <= 2**63 - 1
    assert nano_cpus(spec.resources.cpu) == 9223372036 * 10**9
    assert nano_cpus("250m") == 250_000_000 and memory_bytes("6Mi") == 6 * 2**20 and memory_bytes("1.5G") == 1_500_000_000


def test_description_must_be_text():
    with pytest.raises(InputError, match="description: must be text, got list"):
        parse({"name": "mkt", "description": [["lol"] * 9] * 9}, P, "mkt")
