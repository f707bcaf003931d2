"""The scale_down strategy through the real deploy target (services/deploy/scale.py) on the
Kubernetes emulator: a failing call lowers the team's Deployment from 2 replicas to 1, the next call
that succeeds restores 2; each change one actions-trail row (written by scale.py, not twice)."""

from __future__ import annotations

from tests.k8s.conftest import controller, emulator, image, k8s_project, kubeconfig, spec, target  # noqa: F401
from tests.k8s.emulator import DEPLOYMENTS


def test_scale_down_then_restore_through_the_deploy_target(cli, k8s_project, target, spec, controller,  # noqa: F811
                                                           emulator):  # noqa: F811
    from elfctl import resilience
    from elfctl.resilience import fallback

    assert cli("db", "migrate").exit_code == 0
    assert target.rollout(spec, image("v1"), 1, {}, {}, 30).ok
    replicas = lambda: emulator.obj(DEPLOYMENTS, "elf-test", "mkt")["spec"]["replicas"]  # noqa: E731
    assert replicas() == 2
    resilience.reset()  # the library finds the project (and its deploy target) from the current folder
    healthy = {"now": False}

    @fallback("memory", ["scale_down", "degrade_service"], team="mkt", degrade=lambda: "small answer")
    def answer():
        if not healthy["now"]:
            raise MemoryError("the model server ran out of memory")
        return "full answer"

    try:
        out = answer()
        assert out.served_by == "degrade_service" and out.value == "small answer"
        assert [(s.strategy, s.result) for s in out.steps] == [
            ("scale_down", "scaled down: ok: 2 -> 1 replicas"), ("degrade_service", "ok")]
        assert replicas() == 1
        healthy["now"] = True
        assert answer().served_by == "primary"
        assert replicas() == 2
        store = resilience.runtime.store()
        rows = store.query("SELECT strategy, result, team, actor FROM platform_actions ORDER BY ts, id")
        assert [(r["strategy"], r["result"]) for r in rows] == [
            ("scale_down", "ok: 2 -> 1 replicas"), ("degrade_service", "ok"), ("restore", "ok: 1 -> 2 replicas")]
        assert {r["team"] for r in rows} == {"mkt"}
    finally:
        resilience.reset()
