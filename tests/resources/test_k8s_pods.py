"""A crash-looping pod on the Kubernetes emulator (kmock, driven through the real `kubernetes`
client): k8s_pod reads it critical; `--apply` scales the team's Deployment down by one and opens
its breaker (seen by any process: the store's breaker_state); once the pods run again, it restores
the replicas and closes the breaker. Each action one actions-trail row."""

from __future__ import annotations

import json

from tests.contract.test_deploy_target import _wait_for
from tests.k8s.conftest import controller, emulator, image, k8s_project, kubeconfig, spec, target  # noqa: F401
from tests.k8s.emulator import COMPLETE, CRASH, DEPLOYMENTS

QUIET = ["ELFCTL_RESOURCES_CPU_WARNING", "ELFCTL_RESOURCES_CPU_CRITICAL"]


def _resources(cli, *flags):
    r = cli("resources", "--json", *flags)
    assert r.exit_code in (0, 1), r.output
    return r.exit_code, json.loads(r.stdout)


def _pods(data):
    return data["resources"]["k8s_pod"]


def test_a_crash_looping_pod_is_critical_scaled_down_broken_then_restored(
        cli, k8s_project, target, spec, controller, emulator, monkeypatch):  # noqa: F811
    for var in QUIET:  # the host's cpu is not what this test is about
        monkeypatch.setenv(var, "1000")
    monkeypatch.setenv("ELFCTL_RESOURCES_TIMEOUT_S", "20")
    assert cli("db", "migrate").exit_code == 0
    assert target.rollout(spec, image("v1"), 1, {}, {}, 30).ok

    code, data = _resources(cli)
    assert _pods(data)["status"] == "healthy", _pods(data)
    assert data["resources"]["network"]["readings"][0]["subject"] == "registry"  # registry.test:5000, made up
    assert _pods(data)["readings"][0]["detail"].startswith("2/2 ready, 0 restart(s), 0 OOMKilled, 0 Pending")

    controller.behaviour[image("v1")] = CRASH
    assert _wait_for(lambda: any(p["status"]["containerStatuses"][0]["state"].get("waiting")
                                for p in target.pods("mkt")))
    code, data = _resources(cli)
    reading = _pods(data)["readings"][0]
    assert code == 1 and reading["status"] == "critical" and reading["team"] == "mkt", reading
    assert "CrashLoopBackOff" in reading["detail"] and "4 restart(s)" in reading["detail"], reading
    planned = {(s["strategy"], s["target"], s["result"]) for s in data["policy"]}
    assert ("scale_down", "mkt", "would") in planned and \
        ("circuit_break", "resource:k8s_pod:mkt", "would") in planned, planned
    assert emulator.obj(DEPLOYMENTS, "elf-test", "mkt")["spec"]["replicas"] == 2  # the dry run changed nothing
    health = cli("health", "--json", "-c", "resource:k8s_pod")  # the health component fed by the monitor
    check = json.loads(health.stdout)["checks"]["resource:k8s_pod"][0]
    assert health.exit_code == 1 and check["status"] == "fail" and "CrashLoopBackOff" in check["output"], check

    code, data = _resources(cli, "--apply")
    done = {s["strategy"]: s["result"] for s in data["policy"]}
    assert done["scale_down"] == "ok: 2 -> 1 replicas" and done["circuit_break"] == "ok: opened", done
    assert done["retry"] == "call path"
    assert emulator.obj(DEPLOYMENTS, "elf-test", "mkt")["spec"]["replicas"] == 1

    from elfctl.app import App
    from elfctl.errors import ElfError
    from elfctl.output import Output
    from elfctl.resilience import breaker

    app = App(Output(quiet=True), cwd=k8s_project)  # another reader of the store, as another process would be
    try:
        try:
            breaker.guarded(breaker.make(app.store, "resource:k8s_pod:mkt"), lambda: "called")
            raise AssertionError("the breaker let a call through")
        except ElfError as exc:
            assert exc.code == "circuit_open", exc
        rows = app.store.query("SELECT strategy, team, target, result, trigger FROM platform_actions ORDER BY ts")
        assert {(r["strategy"], r["team"], r["target"], r["result"]) for r in rows} == {
            ("scale_down", "mkt", "kubernetes:mkt", "ok: 2 -> 1 replicas"),
            ("circuit_break", "mkt", "resource:k8s_pod:mkt", "ok: opened")}
        assert all("k8s_pod team:mkt critical" in r["trigger"] and "CrashLoopBackOff" in r["trigger"] for r in rows)

        controller.behaviour[image("v1")] = COMPLETE  # the pods run again
        assert _wait_for(lambda: all(p["status"]["containerStatuses"][0].get("ready") for p in target.pods("mkt")))
        code, data = _resources(cli, "--apply")
        assert _pods(data)["status"] == "healthy", _pods(data)
        # what is still critical: only the project's made-up registry host (registry.test), not the pods
        assert [t for t, v in data["resources"].items() if v["status"] == "critical"] == ["network"]
        done = {s["strategy"]: s["result"] for s in data["policy"]}
        assert done == {"restore": "ok: 1 -> 2 replicas", "close_breaker": "ok: closed"}, data["policy"]
        assert emulator.obj(DEPLOYMENTS, "elf-test", "mkt")["spec"]["replicas"] == 2
        assert breaker.guarded(breaker.make(app.store, "resource:k8s_pod:mkt"), lambda: "called") == "called"
        assert app.store.query("SELECT count(*) AS n FROM platform_actions")[0]["n"] == 4
        assert app.store.query("SELECT count(*) AS n FROM scaled_teams")[0]["n"] == 0
    finally:
        app.close()
