"""kill -9 during restore (services/deploy/scale.py), the counterpart of test_scale_kill9.py, on the real
dockerd, at each of its stages:

- intent-recorded: the count to come back to is written, the target not yet touched;
- cloned: inside the Docker target, the new replica runs and accepts connections, the proxy does not
  serve it yet;
- proxy-switched: the proxy serves both replicas, the target has not returned;
- target-scaled: the target has scaled, the outcome not yet in the trail.

The restore runs as `resources --apply` runs it (scale.restore: the team's deploy lease held), so the
killed holder's lease must not block the re-run. Then what a user sees: `elfctl health` shows a count
the proxy really serves (n/n ready), a re-run of `elfctl resources --apply` completes the restore with
exactly one restore row in the trail, and no replica is left running unserved."""

from __future__ import annotations

import pytest

from tests.contract.test_deploy_target import _wait_for
from tests.deploy.conftest import docker_env, engine, make_team, registry_address, team_name  # noqa: F401
from tests.resources.test_scale_kill9 import HOT, _apply, _containers, _health, _kill_at, _scale_rows, team  # noqa: F401

DRIVER = """
import sys, time
from elfctl.app import App
from elfctl.output import Output
from elfctl.services.deploy import scale

team, stage = sys.argv[1], sys.argv[2]
app = App(Output())
target = app.target
app.__dict__["target"] = target  # scale.restore reads app.target: this one, wrapped below

def hold(at):
    if at == stage:
        print("at " + at, flush=True)
        time.sleep(600)

real_scale, real_write = target.scale, target.proxy.write_targets

def write_targets(*args, **kwargs):
    hold("cloned")
    out = real_write(*args, **kwargs)
    hold("proxy-switched")
    return out

def scale_(name, replicas):
    if replicas == 2:
        hold("intent-recorded")
    out = real_scale(name, replicas)
    if replicas == 2:
        hold("target-scaled")
    return out

target.proxy.write_targets, target.scale = write_targets, scale_
print(scale.restore(app, team, "memory recovered (test)").result, flush=True)
"""


@pytest.mark.parametrize("stage, serving_after_kill", [
    ("intent-recorded", 1), ("cloned", 1), ("proxy-switched", 2), ("target-scaled", 2)])
def test_restore_killed_at_each_stage_is_completed_by_the_next_run(project, team, engine, stage,  # noqa: F811
                                                                   serving_after_kill):
    name, env = team
    steps = _apply(project, {**env, **HOT})  # scaled down to 1 by the platform
    assert [(s["strategy"], s["target"], s["result"]) for s in steps] == \
        [("scale_down", name, "ok: 2 -> 1 replicas")], [(s["target"], s["trigger"]) for s in steps]
    assert _wait_for(lambda: len(_containers(engine, env, name)) == 1, timeout=60), _containers(engine, env, name)

    _kill_at(project, env, name, stage, DRIVER)
    count, output = _health(project, env, name)
    assert count == serving_after_kill and output.startswith(f"{count}/{count} ready"), output
    assert _scale_rows(project) == [("scale_down", "ok: 2 -> 1 replicas")]  # killed before its outcome

    steps = _apply(project, env)  # the re-run, the resource healthy: the restore is completed
    assert [s["strategy"] for s in steps] == ["restore"] and steps[0]["result"].startswith("ok: "), steps
    rows = _scale_rows(project)
    assert [r[0] for r in rows] == ["scale_down", "restore"], rows  # exactly one restore row
    count, output = _health(project, env, name)
    assert count == 2 and output.startswith("2/2 ready"), output
    # No orphan: the replica a killed restore started but never served is retired, none is added twice.
    assert _wait_for(lambda: len(_containers(engine, env, name)) == 2, timeout=60), _containers(engine, env, name)

    steps = _apply(project, env)  # nothing more to do
    assert steps == [], steps
    assert len(_scale_rows(project)) == 2 and len(_containers(engine, env, name)) == 2
