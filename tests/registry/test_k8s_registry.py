"""The registry on the Kubernetes target (kmock's emulator through the real client, a real Docker
build and push): `elfctl deploy` registers the team with its in-cluster Service endpoint, its revision
and digest, passing from the cluster's readiness; `team rm` and `infra down` take the entry away,
each a trail row, so dependents read the team as missing rather than critical forever."""

from __future__ import annotations

import json

from elfctl.services.actions import trail
from tests.deploy.conftest import docker_env, engine, make_team, registry_address, team_name  # noqa: F401
from tests.k8s.conftest import controller, emulator, kubeconfig  # noqa: F401
from tests.k8s.emulator import COMPLETE
from tests.registry.test_deploy_registry import _add, _show

NS = "elf-reg"


def _trail(project, team):
    from elfctl import config
    from elfctl.bootstrap import open_store

    store = open_store(config.load(cwd=project))
    try:
        return [(r.actor, r.strategy, r.trigger) for r in reversed(trail.recent(store, team=team))
                if r.resource == "registry"]
    finally:
        store.close()


def test_kubernetes_deploy_registers_the_in_cluster_endpoint_and_down_deregisters(  # noqa: F811
        project, kubeconfig, emulator, controller, docker_env, team_name, elfctl):  # noqa: F811
    env = {**docker_env, "ELFCTL_KUBERNETES_NAMESPACE": NS, "ELFCTL_KUBERNETES_POLL_S": "0.05",
           "ELFCTL_DEPLOY_TARGET": "kubernetes"}
    _add(make_team(project, env, team_name), capabilities=["seo"], owner="growth")
    controller.fallback = COMPLETE

    proc = elfctl("deploy", team_name, "--json", cwd=project, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr
    deployed = json.loads(proc.stdout)
    proc, shown = _show(project, env, team_name)
    assert proc.returncode == 0, proc.stderr
    e = shown["entry"]
    service = f"http://{team_name}.{NS}.svc:8080"
    assert (e["kind"], e["status"], e["owner"], e["url"]) == ("team", "passing", "growth", service)
    assert e["endpoints"] == {"network": service}  # a cluster publishes no port on this machine
    assert (e["metadata"]["revision"], e["metadata"]["digest"]) == (1, deployed["digest"])
    assert e["reason"] == "probe: 1/1 ready"  # the cluster's readiness, not a GET from this machine
    found = json.loads(elfctl("registry", "list", "--capability", "seo", "--json", cwd=project, env=env).stdout)
    assert [r["name"] for r in found] == [team_name]

    # team rm: the Deployment and the entry go together
    assert elfctl("team", "rm", team_name, "--yes", cwd=project, env=env, timeout=60).returncode == 0
    gone, _ = _show(project, env, team_name)
    assert gone.returncode == 1 and f"no entry '{team_name}'" in gone.stderr
    assert _trail(project, team_name)[-1] == ("team rm", "deregister", "team removed")

    # deployed again, then `infra down` stops it: its entry goes too
    proc = elfctl("deploy", team_name, "--json", cwd=project, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert _show(project, env, team_name)[1]["entry"]["status"] == "passing"
    down = elfctl("infra", "down", "--json", cwd=project, env=env, timeout=120)
    assert down.returncode == 0, down.stderr
    assert f"team {team_name}" in json.loads(down.stdout)["stopped"]
    assert emulator.obj("apps/v1/deployments", NS, team_name) is None
    gone, _ = _show(project, env, team_name)
    assert gone.returncode == 1 and f"no entry '{team_name}'" in gone.stderr
    assert _trail(project, team_name)[-1] == ("infra down", "deregister", "team stopped")
