"""`elfctl team new/list/validate`, and bad team specs fuzzed through the CLI: each one refused
(exit 2, naming the file), never a traceback."""

from __future__ import annotations

import json
import re

import yaml
from hypothesis import HealthCheck, assume, given, settings
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


# Values each field must refuse, generated; every one is a (field as the error names it, document patch).
not_int = st.one_of(st.booleans(), st.floats(allow_nan=True), st.text(max_size=8), st.lists(st.integers(), max_size=2))
not_number = st.one_of(st.booleans(), st.text(max_size=8), st.just(float("nan")), st.just(float("inf")),
                       st.just(float("-inf")), st.lists(st.integers(), max_size=2))


def outside(lo, hi, *, whole=True):
    """Numbers just and far outside lo..hi, and values of the wrong type."""
    if whole:
        return st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=hi + 1), not_int)
    return st.one_of(st.floats(max_value=lo, exclude_max=True).filter(lambda x: x < lo),  # not -0.0 for 0.0
                     st.floats(min_value=hi, exclude_min=True), not_number)


def bad_label(pattern):
    return st.text(max_size=70).filter(lambda t: len(t) > 63 or not pattern.match(t))


def at(fld, path, values):
    """Put each generated value at `path` (a tuple of keys) of a valid spec; the error must name `fld`."""
    def patch(value):
        doc = {"name": "fuzz", "port": 8080, "health": {"path": "/health"}}
        table = doc
        for key in path[:-1]:
            table = table.setdefault(key, {})
        table[path[-1]] = value
        return fld, doc

    return values.map(patch)


def _dns():
    from elfctl.domain.team import DNS1123

    return DNS1123


def _env():
    from elfctl.domain.team import ENV_NAME

    return ENV_NAME


bad_specs = st.one_of(
    at("port", ("port",), outside(1, 65535)),
    at("host_port", ("host_port",), outside(1, 65535)),
    at("replicas", ("replicas",), outside(0, 100)),
    at("health.period_s", ("health", "period_s"), outside(0.05, 3600, whole=False)),
    at("health.timeout_s", ("health", "timeout_s"), outside(0.05, 3600, whole=False)),
    at("health.soak_s", ("health", "soak_s"), outside(0.0, 3600, whole=False)),
    at("health.failure_threshold", ("health", "failure_threshold"), outside(1, 100)),
    at("health.path", ("health", "path"), st.text(max_size=12).filter(lambda t: not t.startswith("/"))),
    at("health.path", ("health", "path"), st.from_regex(r"/[a-z]{0,4}[ \t][a-z]{0,4}", fullmatch=True)),
    at("name", ("name",), bad_label(_dns())),
    at("env.", ("env",), st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: not _env().match(k)),
                                         st.text(max_size=4), min_size=1, max_size=1)),
    at("env.", ("env",), st.dictionaries(st.just("OK_NAME"), st.one_of(st.none(), st.lists(st.integers())),
                                         min_size=1)),
    at("secrets", ("secrets",), st.lists(st.text(max_size=8).filter(lambda k: not _env().match(k)), min_size=1,
                                         max_size=3)),
    at("secrets", ("secrets",), st.just(["SAME", "SAME"])),
    at("secrets_as", ("secrets_as",), st.text(max_size=8).filter(lambda t: t not in ("env", "files"))),
    at("resources.cpu", ("resources", "cpu"), st.text(min_size=1, max_size=8).filter(
        lambda t: not re.match(r"^\d+(\.\d+)?m?$", t))),
    at("llm.budget.daily_usd", ("llm", "budget", "daily_usd"), outside(0, 1e9, whole=False)),
    at("llm.budget.soft_limit", ("llm", "budget", "soft_limit"), outside(0.01, 1.0, whole=False)),
    at("llm.budget.hard_action", ("llm", "budget", "hard_action"),
       st.text(max_size=10).filter(lambda t: t not in ("warn", "downgrade", "block"))),
    at("mcp_servers", ("mcp_servers",), st.lists(bad_label(_dns()), min_size=1, max_size=2)),
    at("helth", ("helth",), st.integers()),  # an unknown key
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=bad_specs)
def test_fuzzed_bad_specs_are_refused_naming_file_and_field(project, cli, case):
    fld, doc = case
    folder = project / "teams" / "fuzz"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "team.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    res = cli("team", "validate", "fuzz")  # catch_exceptions=False: any exception fails the test
    assert res.exit_code == 2, (doc, res.stdout)
    assert f"{folder / 'team.yaml'}: {fld}" in res.stderr and "hint:" in res.stderr, res.stderr


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.text(max_size=60))
def test_fuzzed_text_that_is_no_spec_of_this_team_is_refused(project, cli, raw):
    """Arbitrary text that is not YAML, not a mapping, or names no team `fuzz`: exit 2 naming the file."""
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError:
        doc = None
    assume(not (isinstance(doc, dict) and doc.get("name") == "fuzz"))  # could be a valid spec
    folder = project / "teams" / "fuzz"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "team.yaml").write_text(raw)
    res = cli("team", "validate", "fuzz")
    assert res.exit_code == 2, (raw, res.stdout)
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
