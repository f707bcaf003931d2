"""Deploy and the registry on the real Docker engine and registry: a team registered by `elfctl
deploy` with its endpoints, revision and digest; depends_on checked before building; a team killed
with `docker kill` goes critical at the next probe and passing again after `elfctl deploy`."""

from __future__ import annotations

import json
import subprocess

import yaml

from elfctl.services.actions import trail
from tests.conftest import run_elfctl
from tests.deploy.conftest import docker_env, engine, make_team, registry_address  # noqa: F401 (fixtures)


def _add(folder, **fields) -> None:
    path = folder / "team.yaml"
    doc = yaml.safe_load(path.read_text())
    doc.update(fields)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _show(project, env, name):
    proc = run_elfctl("registry", "show", name, "--json", cwd=project, env=env)
    return proc, (json.loads(proc.stdout) if proc.stdout.strip() else None)


def test_deploy_registers_the_team_and_probes_keep_it_honest(project, docker_env):  # noqa: F811
    tag = docker_env["ELFCTL_DEPLOY_PREFIX"][4:]
    seo, writer = f"t{tag}-seo", f"t{tag}-writer"
    env = {**docker_env, "ELFCTL_DISCOVERY_PROBE_PERIOD_S": "1"}
    _add(make_team(project, env, seo), owner="growth", lifecycle="production", capabilities=["seo"],
         skills=[{"id": "audit", "name": "SEO audit", "description": "Audits a page", "tags": ["seo"]}])
    _add(make_team(project, env, writer), capabilities=["copywriting"], depends_on=[seo])
    assert run_elfctl("team", "validate", cwd=project, env=env).returncode == 0

    # depends_on before building: seo is not registered yet
    proc = run_elfctl("deploy", writer, cwd=project, env=env)
    assert proc.returncode == 1, proc.stderr
    assert f"team {writer} depends on {seo}, which is not registered" in proc.stderr and "--ignore-deps" in proc.stderr
    assert json.loads(run_elfctl("deployments", writer, "--json", cwd=project, env=env).stdout) == []  # nothing built
    dry = run_elfctl("deploy", writer, "--dry-run", "--ignore-deps", "--json", cwd=project, env=env)
    assert dry.returncode == 0 and any(seo in w for w in json.loads(dry.stdout)["warnings"])

    assert run_elfctl("deploy", seo, cwd=project, env=env, timeout=300).returncode == 0
    proc, shown = _show(project, env, seo)
    assert proc.returncode == 0, proc.stderr
    e = shown["entry"]
    prefix = docker_env["ELFCTL_DEPLOY_PREFIX"]
    assert (e["kind"], e["status"], e["owner"], e["lifecycle"]) == ("team", "passing", "growth", "production")
    assert e["endpoints"]["network"] == f"http://{prefix}-{seo}:8080"
    assert e["endpoints"]["host"].startswith("http://127.0.0.1:")
    assert e["metadata"]["revision"] == 1 and e["metadata"]["digest"].startswith("sha256:")
    assert shown["card"]["skills"][0]["id"] == "audit"

    assert run_elfctl("deploy", writer, cwd=project, env=env, timeout=300).returncode == 0
    found = json.loads(run_elfctl("registry", "list", "--capability", "seo", "--json", cwd=project, env=env).stdout)
    assert [r["name"] for r in found] == [seo]

    # docker kill the serving replica: the next probe (a sweep forces one) says critical
    subprocess.run(["docker", "kill", f"{prefix}-{seo}-r1-0"], check=True, capture_output=True)
    swept = json.loads(run_elfctl("registry", "sweep", "--json", cwd=project, env=env).stdout)
    assert {p["name"]: p["outcome"] for p in swept["probed"]}[seo] == "fail"
    proc, shown = _show(project, env, seo)
    assert shown["entry"]["status"] == "critical"
    health = run_elfctl("health", "-c", "service-registry", "--json", cwd=project, env=env)
    assert health.returncode == 1 and f"{writer} -> {seo} (critical)" in health.stdout
    refused = run_elfctl("deploy", writer, "--tag", "other", cwd=project, env=env)
    assert refused.returncode == 1 and f"{seo}, which is critical (probe:" in refused.stderr

    # deploy brings it back: passing again
    assert run_elfctl("deploy", seo, cwd=project, env=env, timeout=300).returncode == 0
    assert _show(project, env, seo)[1]["entry"]["status"] == "passing"

    from elfctl import config
    from elfctl.bootstrap import open_store

    store = open_store(config.load(cwd=project))
    rows = [(r.actor, r.trigger) for r in reversed(trail.recent(store, team=seo)) if r.resource == "registry"]
    store.close()
    assert ("deploy", "registered") in rows
    assert ("registry probe", "status passing -> critical") in rows
    assert rows[-1][1] in ("re-registered", "status critical -> passing")

    # team rm takes its entry with it: dependents now read it as missing
    assert run_elfctl("team", "rm", seo, "--yes", cwd=project, env=env, timeout=120).returncode == 0
    gone, _ = _show(project, env, seo)
    assert gone.returncode == 1 and f"no entry '{seo}'" in gone.stderr
    graph = run_elfctl("registry", "graph", cwd=project, env=env)
    assert graph.returncode == 1 and f"{writer} -> {seo} (missing)" in graph.stdout
    store = open_store(config.load(cwd=project))
    (last,) = [r for r in trail.recent(store, team=seo, limit=1)]
    store.close()
    assert (last.actor, last.strategy, last.trigger) == ("team rm", "deregister", "team removed")
