"""team.yaml's registry fields (owner, lifecycle, capabilities, depends_on, skills) through `elfctl
team validate`: accepted, or refused naming the file, the field and the fix; loops reported with
their cycle, also when they pass through several teams."""

from __future__ import annotations

import pytest
import yaml


def _team(project, cli, name, **fields):
    if not (project / "teams" / name).exists():
        assert cli("team", "new", name).exit_code == 0
    path = project / "teams" / name / "team.yaml"
    doc = yaml.safe_load(path.read_text())
    doc.update(fields)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_registry_fields_accepted(project, cli):
    from elfctl.adapters.team_files import load

    path = _team(project, cli, "seo", owner="growth", lifecycle="production", capabilities=["seo", "copy.writing"],
                 depends_on=["pg", "files"],
                 skills=[{"id": "audit", "name": "Audit", "description": "Audits a page", "tags": ["seo"],
                          "examples": ["audit example.com"]}])
    assert cli("team", "validate").exit_code == 0
    spec = load(path)
    assert (spec.owner, spec.lifecycle, spec.capabilities, spec.depends_on) == (
        "growth", "production", ("seo", "copy.writing"), ("pg", "files"))
    assert spec.skills[0].examples == ("audit example.com",)


@pytest.mark.parametrize("fields, says", [
    ({"lifecycle": "beta"}, "lifecycle: 'beta' is not a lifecycle"),
    ({"owner": ""}, "owner: must be a non-empty string"),
    ({"capabilities": ["SEO"]}, "capabilities[0]: 'SEO' is not a capability tag"),
    ({"capabilities": "seo"}, "capabilities: must be a list"),
    ({"depends_on": ["Not A Name"]}, "depends_on[0]: 'Not A Name' is not a registry entry name"),
    ({"depends_on": ["seo"]}, "seo depends on itself (seo -> seo)"),
    ({"skills": [{"id": "a", "name": "A"}]}, "skills[0].description: missing"),
    ({"skills": [{"id": "a", "name": "A", "description": "d", "tag": []}]}, "skills[0].tag: unknown key"),
    ({"skills": [{"id": "a", "name": "A", "description": "d"}, {"id": "a", "name": "B", "description": "e"}]},
     "skills[1].id: 'a' is used twice"),
])
def test_bad_registry_fields_exit_2_naming_file_and_field(project, cli, fields, says):
    path = _team(project, cli, "seo", **fields)
    res = cli("team", "validate")
    assert res.exit_code == 2
    assert str(path) in res.stderr and says in res.stderr and "hint:" in res.stderr


def test_a_loop_through_three_teams_is_reported_with_its_cycle(project, cli):
    _team(project, cli, "a", depends_on=["b"])
    _team(project, cli, "b", depends_on=["c", "pg"])
    _team(project, cli, "c")
    assert cli("team", "validate").exit_code == 0
    _team(project, cli, "c", depends_on=["a"])
    res = cli("team", "validate")
    assert res.exit_code == 2 and "depends_on loop a -> b -> c -> a" in res.stderr
    assert "teams/a/team.yaml" in res.stderr


def test_dependency_order_puts_needed_teams_first(project, cli):
    from elfctl.adapters.team_files import discover, load
    from elfctl.services.deploy.registry_hooks import in_dependency_order

    _team(project, cli, "a", depends_on=["c"])
    _team(project, cli, "b")
    _team(project, cli, "c", depends_on=["b", "outside-db"])
    specs = [load(p) for p in discover(project / "teams")]
    assert [s.name for s in in_dependency_order(specs)] == ["b", "c", "a"]
