"""Issue 14, item 1: a version that breaks after the switch is switched back within the verification
window, recorded `rolled_back`, never offered to `rollback`, and the deploy exits 1. Real dockerd and
registry; a request loop on the team's port counts what users lose during and after each deploy."""

from __future__ import annotations

import json
import time

from tests.conftest import run_elfctl
from tests.deploy.conftest import make_team, set_version
from tests.deploy.test_deploy_flow import Prober, _deploy, _history, _port

# httpd dies 3 s after it starts; the container lives on (issue 14: exit 0, users lost 15 s).
HTTPD_DIES = """\
FROM {base}
COPY www /www
EXPOSE 8080
CMD ["sh", "-c", "timeout 3 httpd -f -v -p 8080 -h /www; sleep 600"]
"""
# The container exits 3 s after it starts (issue 14: with a restart policy, a crash loop).
CRASHES = """\
FROM {base}
COPY www /www
EXPOSE 8080
CMD ["sh", "-c", "httpd -f -v -p 8080 -h /www & sleep 3; exit 1"]
"""
# Serves for 6 s, then its main process eats memory until the kernel kills it (OOMKilled).
OOM_AFTER_6S = """\
FROM {base}
COPY www /www
EXPOSE 8080
CMD ["sh", "-c", "httpd -p 8080 -h /www; sleep 6; exec tail /dev/zero"]
"""


class TimedProber(Prober):
    """`lost_s`: how long users lost requests (a request that hangs until its 3 s timeout counts when
    it was sent)."""

    @property
    def lost_s(self) -> float:
        return self.failed_at[-1] - self.failed_at[0] if self.failed_at else 0.0


def _bad_version(folder, dockerfile: str, env: dict, page: str) -> None:
    (folder / "Dockerfile").write_text(dockerfile.format(base=env["ELFCTL_DEPLOY_BASE_IMAGE"]))
    set_version(folder, page)


def _after(port: int, seconds: float = 2.0) -> TimedProber:
    with TimedProber(port) as after:
        time.sleep(seconds)
    return after


def _not_a_rollback_target(project, env, team, revision: int) -> None:
    proc = run_elfctl("rollback", team, "--to", str(revision), cwd=project, env=env)
    assert proc.returncode == 2 and f"no successful revision {revision}" in proc.stderr, proc.stderr
    proc = run_elfctl("rollback", team, cwd=project, env=env)  # the default: the newest not serving
    assert proc.returncode == 2 and "no earlier revision" in proc.stderr, proc.stderr


def test_default_window_catches_httpd_dying_3s_after_start(project, docker_env, team_name, engine):
    """Default health timings and the default window: the team.yaml `team new` writes, untouched."""
    env = dict(docker_env)
    assert run_elfctl("db", "migrate", cwd=project, env=env).returncode == 0
    assert run_elfctl("team", "new", team_name, cwd=project, env=env).returncode == 0
    folder = project / "teams" / team_name
    assert "\n  soak_s:" not in (folder / "team.yaml").read_text()  # the default window applies
    set_version(folder, "good")
    proc, first = _deploy(project, env, team_name)
    assert proc.returncode == 0 and first["state"] == "switched", proc.stderr
    assert "verification window 10s passed" in first["reason"]
    port = _port(engine, env, team_name)

    _bad_version(folder, HTTPD_DIES, env, "dies")
    with TimedProber(port) as during:
        proc, bad = _deploy(project, env, team_name)
    assert proc.returncode == 1, proc.stderr
    assert bad["state"] == "rolled_back"
    assert "after the switch" in bad["reason"] and "stopped accepting connections" in bad["reason"]
    assert "switched back to revision 1" in bad["reason"]
    # Users lost requests only between httpd's death and the switch back (one 1 s probe period),
    # where they lost every request for 15 s before.
    assert during.lost_s < 1.5 and len(during.failed) < during.ok / 3, (during.lost_s, len(during.failed))
    after = _after(port)
    assert after.failed == [] and after.bodies == {"good"}
    hist = _history(project, env, team_name)
    assert hist[2]["state"] == "rolled_back" and hist[1]["state"] == "switched"
    assert "stopped accepting connections" in hist[2]["error"] and hist[2]["finished_at"]
    assert not engine.containers({"elfctl.team": team_name, "elfctl.revision": "2"})
    _not_a_rollback_target(project, env, team_name, 2)


def test_crash_loop_is_switched_back_at_once(project, docker_env, team_name, engine):
    # A team without a window of its own: deploy.soak_s (here 5 s, from the environment) applies.
    env = {**docker_env, "ELFCTL_DEPLOY_SOAK_S": "5"}
    folder = make_team(project, env, team_name, page="good")
    yaml = folder / "team.yaml"
    yaml.write_text(yaml.read_text().replace("  soak_s: 0.6\n", ""))
    proc, first = _deploy(project, env, team_name)
    assert proc.returncode == 0, proc.stderr
    assert "verification window 5s passed" in first["reason"]
    port = _port(engine, env, team_name)

    # A window that is no window: one clear line, exit 2, nothing recorded.
    proc = run_elfctl("deploy", team_name, cwd=project, env={**env, "ELFCTL_DEPLOY_SOAK_S": "-1"})
    assert proc.returncode == 2, proc.stderr
    assert "'deploy.soak_s' must be from 0 to 3600, got -1" in proc.stderr and "Traceback" not in proc.stderr
    assert list(_history(project, env, team_name)) == [1]

    _bad_version(folder, CRASHES, env, "crashes")
    with TimedProber(port) as during:
        proc, bad = _deploy(project, env, team_name)
    assert proc.returncode == 1, proc.stderr
    assert bad["state"] == "rolled_back" and "container exited with code 1" in bad["reason"]
    assert during.lost_s < 1.0, (during.lost_s, len(during.failed))
    after = _after(port)
    assert after.failed == [] and after.bodies == {"good"}
    hist = _history(project, env, team_name)
    assert {r: hist[r]["state"] for r in hist} == {1: "switched", 2: "rolled_back"}
    assert "exited with code 1" in hist[2]["error"]
    _not_a_rollback_target(project, env, team_name, 2)


def test_window_is_bounded_by_timeout_and_sees_an_oom_kill_after_6s(project, docker_env, team_name, engine):
    env = dict(docker_env)
    folder = make_team(project, env, team_name, page="good")
    yaml = folder / "team.yaml"
    yaml.write_text(yaml.read_text().replace("soak_s: 0.6", "soak_s: 10").replace("memory: 128Mi", "memory: 16Mi"))
    proc, _ = _deploy(project, env, team_name, "--timeout", "30")
    assert proc.returncode == 0, proc.stderr
    port = _port(engine, env, team_name)

    # --timeout leaves room for the 10 s window: the kill 6 s after the start is seen.
    _bad_version(folder, OOM_AFTER_6S, env, "oom")
    with TimedProber(port) as during:
        proc, bad = _deploy(project, env, team_name, "--timeout", "30")
    assert proc.returncode == 1, proc.stderr
    assert bad["state"] == "rolled_back" and "OOMKilled" in bad["reason"], bad["reason"]
    assert during.lost_s < 1.0, (during.lost_s, len(during.failed))
    after = _after(port)
    assert after.failed == [] and after.bodies == {"good"}
    assert _history(project, env, team_name)[2]["state"] == "rolled_back"

    # A --timeout shorter than the window cuts it, and says so: verification never outlasts it.
    proc, cut = _deploy(project, env, team_name, "--timeout", "3")
    assert proc.returncode == 0, proc.stderr
    assert cut["state"] == "switched" and any("verification window cut" in w for w in cut["warnings"])
    hist = _history(project, env, team_name)
    assert hist[3]["state"] == "switched" and hist[3]["details"]["timings"]["verifying"] < 4.0
    assert json.dumps(hist[3]["details"]["warnings"]).count("verification window cut") == 1
