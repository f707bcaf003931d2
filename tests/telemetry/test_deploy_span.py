"""`elfctl deploy` is traced: one span per deploy, its states as events, exported over OTLP/HTTP to a real
loopback receiver when the CLI exits; the team's replicas get the OTel settings (real Docker + registry)."""

from __future__ import annotations

import json

from tests.conftest import run_elfctl
from tests.deploy.conftest import docker_env, engine, make_team, registry_address, team_name  # noqa: F401
from tests.telemetry.receiver import Receiver, attrs


def test_deploy_span_with_states_and_the_team_gets_otel_settings(project, docker_env, team_name, engine):  # noqa: F811
    receiver = Receiver()
    try:
        env = {**docker_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
               "ELFCTL_TELEMETRY_TEAM_ENDPOINT": "http://otel-collector:4318"}
        folder = make_team(project, env, team_name)
        proc = run_elfctl("deploy", team_name, "--json", cwd=project, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        revision = json.loads(proc.stdout)["revision"]

        (span,) = [s for _res, s in receiver.spans() if s.name == f"deploy {team_name}"]
        a = attrs(span.attributes)
        assert a["elfctl.team"] == team_name and a["elfctl.revision"] == revision
        assert a["elfctl.deploy.state"] == "switched" and a["elfctl.deploy.target"] == "docker"
        assert span.status.code != 2  # not STATUS_CODE_ERROR
        events = [e.name for e in span.events]
        assert events[0] == "building" and events[-1] == "switched"
        assert {"pushing", "starting", "verifying"} <= set(events)
        assert all(span.start_time_unix_nano <= e.time_unix_nano <= span.end_time_unix_nano for e in span.events)

        prefix = docker_env["ELFCTL_DEPLOY_PREFIX"]
        (app,) = engine.containers({"elfctl.prefix": prefix, "elfctl.team": team_name, "elfctl.role": "app"},
                                   all_=False)
        code, out = engine.exec(app["Id"], ["env"])
        lines = out.splitlines()
        assert code == 0 and "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4318" in lines
        assert f"OTEL_SERVICE_NAME={team_name}" in lines and f"OTEL_RESOURCE_ATTRIBUTES=elfctl.team={team_name}" in lines
        assert not any(ln.startswith("ELFCTL_TELEMETRY_CAPTURE_CONTENT") for ln in lines)

        # A version whose health check fails: the deploy's span says so, with the state it ended in.
        (folder / "www" / "health").write_text('{"status": "fail"}')
        (folder / "www" / "index.html").write_text("v2")
        receiver.bodies["/v1/traces"].clear()
        proc = run_elfctl("deploy", team_name, "--json", cwd=project, env=env, timeout=300)
        assert proc.returncode == 1, proc.stderr
        (span,) = [s for _res, s in receiver.spans() if s.name == f"deploy {team_name}"]
        a = attrs(span.attributes)
        assert span.status.code == 2 and a["error.type"] == "rolled_back" == a["elfctl.deploy.state"]
        assert [e.name for e in span.events][-1] == "rolled_back"
    finally:
        receiver.stop()


def test_team_env_leaves_the_teams_own_otel_settings(project):
    from elfctl.services.telemetry.settings import Settings, team_env

    on = Settings(True, "http://c:4318", capture_content=True)
    env = team_env(on, "alpha", {"OTEL_SERVICE_NAME": "mine"})
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://c:4318" and "OTEL_SERVICE_NAME" not in env
    assert env["ELFCTL_TELEMETRY_CAPTURE_CONTENT"] == "true"
    assert team_env(Settings(), "alpha", {}) == {}
