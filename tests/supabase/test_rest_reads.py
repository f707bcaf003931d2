"""The reads ported to `Rows.select` run over Supabase's REST API with only SUPABASE_URL and
SUPABASE_KEY, and answer what the same database answers through a direct connection:
`registry list` / `registry show` (filters included) and `health`'s store component."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_elfctl


@pytest.fixture
def envs(rest, supa_pg_url):
    return {"rest": {"SUPABASE_URL": rest.url, "SUPABASE_KEY": rest.service_key},
            "postgres": {"ELFCTL_STORE_URL": supa_pg_url}}


@pytest.fixture
def registered(envs, project):
    for args in (("svc-a", "--url", "http://a:8080", "--capability", "search", "--owner", "team-x"),
                 ("svc-b", "--url", "http://b:8080", "--capability", "chat", "--kind", "agent",
                  "--depends-on", "svc-a"),
                 ("svc-c", "--url", "http://c:8080", "--capability", "search", "--depends-on", "gone")):
        proc = run_elfctl("registry", "register", *args, cwd=project, env=envs["postgres"])
        assert proc.returncode == 0, proc.stderr
    return envs


def both(project, envs, *args):
    out = {}
    for kind, env in envs.items():
        proc = run_elfctl(*args, "--json", cwd=project, env=env)
        assert proc.returncode == 0, (kind, proc.stdout, proc.stderr)
        out[kind] = json.loads(proc.stdout)
    return out["rest"], out["postgres"]


@pytest.mark.parametrize("filters", [(), ("--capability", "search"), ("--kind", "agent"), ("--owner", "team-x"),
                                     ("--capability", "nobody-has-it")])
def test_registry_list_over_rest_is_the_list(registered, project, rest, filters):
    before = len(rest.requests)
    over_rest, direct = both(project, registered, "registry", "list", *filters)
    assert over_rest == direct
    assert len(rest.requests) > before  # it did go over REST
    if filters == ("--capability", "search"):
        assert [e["name"] for e in over_rest] == ["svc-a", "svc-c"]


def test_registry_show_over_rest_is_the_show(registered, project):
    over_rest, direct = both(project, registered, "registry", "show", "svc-c")
    assert over_rest == direct
    assert over_rest["missing"] == ["gone"]
    over_rest, direct = both(project, registered, "registry", "show", "svc-a")
    assert over_rest == direct and over_rest["dependents"] == ["svc-b"]


def test_health_store_component_over_rest(registered, project, rest):
    proc = run_elfctl("health", "--component", "store", "--json", cwd=project, env=registered["rest"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    store = json.loads(proc.stdout)["checks"]["store"][0]
    assert store["status"] == "pass" and store["output"] == f"Supabase REST (postgrest/12.2.12) at {rest.url}"
    rest.behave(status=503)
    proc = run_elfctl("health", "--component", "store", "--json", cwd=project, env=registered["rest"])
    rest.behave()
    store = json.loads(proc.stdout)["checks"]["store"][0]
    assert proc.returncode == 1 and store["status"] == "fail" and "503" in store["output"]
