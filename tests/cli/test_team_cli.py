"""`elfctl team new/list/validate`, and bad team specs fuzzed through the CLI: always a clear error
(exit 2, naming the file), never a traceback."""

from __future__ import annotations

import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import run_elfctl


def test_new_list_validate(project, cli):
    res = cli("team", "new", "support-bot", "--json")
    assert res.exit_code == 0
    files = json.loads(res.stdout)["files"]
    assert {"team.yaml", "Dockerfile", "www/health"} <= set(files)
    assert "FROM elfctl/base:busybox" in (project / "teams/support-bot/Dockerfile").read_text()
    assert cli("team", "new", "support-bot").exit_code == 2  # exists
    bad = cli("team", "new", "Bad_Name")
    assert bad.exit_code == 2 and "DNS-1123" in bad.stderr
    listed = json.loads(cli("team", "list", "--json").stdout)
    assert [(t["name"], t["valid"]) for t in listed] == [("support-bot", True)]
    assert cli("team", "validate").exit_code == 0
    assert cli("team", "validate", "support-bot").exit_code == 0
    unknown = cli("team", "validate", "support-bt")
    assert unknown.exit_code == 2 and "did you mean 'support-bot'" in unknown.stderr


def test_validate_names_file_field_and_fix(project, cli):
    cli("team", "new", "alpha")
    path = project / "teams/alpha/team.yaml"
    path.write_text(path.read_text().replace("port: 8080", "prot: 8080"))
    res = cli("team", "validate")
    assert res.exit_code == 2
    assert str(path) in res.stderr and "prot" in res.stderr and "did you mean 'port'" in res.stderr
    listed = json.loads(cli("team", "list", "--json").stdout)
    assert listed[0]["valid"] is False and "prot" in listed[0]["error"]


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True), st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
FIELDS = [
    "name",
    "port",
    "replicas",
    "host_port",
    "build",
    "health",
    "env",
    "secrets",
    "resources",
    "llm",
    "mcp_servers",
    "description",
    "helth",
    "x",
]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=values, raw=st.one_of(st.none(), st.text(max_size=40)))
def test_fuzzed_specs_give_clear_errors(project, cli, field, value, raw):
    folder = project / "teams" / "fuzz"
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"name": "fuzz", "port": 8080, "health": {"path": "/health"}}
    doc[field] = value
    text = raw if raw is not None else yaml.safe_dump(doc)
    (folder / "team.yaml").write_text(text)
    res = cli("team", "validate", "fuzz")  # catch_exceptions=False: any exception fails the test
    assert res.exit_code in (0, 2)
    if res.exit_code == 2:
        assert "team.yaml" in res.stderr and "hint:" in res.stderr


def test_bad_spec_through_a_real_process_has_no_traceback(project):
    folder = project / "teams" / "broken"
    folder.mkdir(parents=True)
    for text in (
        "name: broken\nport: [1, 2]\n",
        "name: broken\nhealth: {path: health}\n",
        ":\n  - ][",
        "name: Broken\n",
        "name: broken\nreplicas: -1\n",
        "name: broken\nenv: {lower: 1}\n",
    ):
        (folder / "team.yaml").write_text(text)
        for argv in (["team", "validate"], ["deploy", "broken"]):
            proc = run_elfctl(*argv, cwd=project)
            assert proc.returncode == 2, (text, proc.stderr)
            assert "team.yaml" in proc.stderr and "Traceback" not in proc.stderr


def test_the_repository_example_team_is_valid():
    from tests.conftest import REPO

    proc = run_elfctl("team", "validate", "--json", cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert [t["name"] for t in json.loads(proc.stdout)] == ["example-team"]
