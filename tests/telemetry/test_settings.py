"""Where telemetry settings come from (elfctl.toml, ELFCTL_TELEMETRY_*, the standard OTEL_* variables),
bad values refused with one clear line (exit 2), and message content only when asked for."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.llm.test_calls import MSG, _team


def _settings(project, toml: str = "", **env):
    from elfctl import config
    from elfctl.services.telemetry import settings as tel

    (project / "elfctl.toml").write_text(toml)
    return tel.from_config(config.load(cwd=project, environ=env), environ=env)


def test_off_unless_asked(project):
    assert _settings(project).enabled is False
    assert _settings(project, "[telemetry]\nservice_name = 'x'\n").enabled is False


def test_the_standard_variables_turn_it_on(project):
    s = _settings(project, OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4318", OTEL_SERVICE_NAME="agents")
    assert (s.enabled, s.endpoint, s.service_name, s.capture_content) == (True, "http://collector:4318", "agents", False)


def test_precedence_file_then_standard_variable_then_elfctl_variable(project):
    s = _settings(project, "[telemetry]\nendpoint = 'http://file:4318'\nservice_name = 'file'\n",
                  OTEL_EXPORTER_OTLP_ENDPOINT="http://std:4318", ELFCTL_TELEMETRY_SERVICE_NAME="mine",
                  OTEL_SERVICE_NAME="std")
    assert (s.endpoint, s.service_name) == ("http://std:4318", "mine")  # the environment beats the file
    s = _settings(project, ELFCTL_TELEMETRY_ENDPOINT="http://a:1", OTEL_EXPORTER_OTLP_ENDPOINT="http://b:2")
    assert s.endpoint == "http://a:1"


def test_enabled_alone_uses_the_default_endpoint(project):
    s = _settings(project, "[telemetry]\nenabled = true\n")
    assert s.enabled and s.endpoint == "http://localhost:4318"


@pytest.mark.parametrize("toml,env", [
    ("[telemetry]\nenabled = false\nendpoint = 'http://c:4318'\n", {}),
    ("[telemetry]\nenabled = true\n", {"OTEL_SDK_DISABLED": "true"}),
    ("", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "ELFCTL_TELEMETRY_ENABLED": "false"}),
])
def test_switched_off_whatever_else_is_set(project, toml, env):
    assert _settings(project, toml, **env).enabled is False


@pytest.mark.parametrize("value", ["collector:4318", "ftp://c:4318", "http://c:99999", "http://"])
def test_a_bad_endpoint_is_one_clear_line_exit_2(project, value, monkeypatch):
    from elfctl.cli.main import app

    (project / "elfctl.toml").write_text(f"[telemetry]\nendpoint = '{value}'\n")
    monkeypatch.chdir(project)
    out = CliRunner().invoke(app, ["health", "--json"], catch_exceptions=False)
    assert out.exit_code == 2
    err = json.loads(out.stdout)["error"]
    assert "telemetry.endpoint" in err["message"] and value in err["message"] and "elfctl.toml" in err["message"]
    assert "http://127.0.0.1:4318" in err["hint"] and "Traceback" not in out.output


def test_a_bad_endpoint_from_the_standard_variable_is_named(project, monkeypatch):
    from elfctl.cli.main import app

    monkeypatch.chdir(project)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost")
    out = CliRunner().invoke(app, ["health", "--json"], catch_exceptions=False)
    assert out.exit_code == 2 and "env OTEL_EXPORTER_OTLP_ENDPOINT" in json.loads(out.stdout)["error"]["message"]


def test_content_recorded_only_when_turned_on(llm_env, llm_server):
    from elfctl import bootstrap, llm
    from tests.telemetry.conftest import seed

    project, store = llm_env
    _team(project)
    got, s = seed(project, extra="capture_content = true")
    llm.reset()
    try:
        llm.completion(team="alpha", messages=MSG, api_base=llm_server.url, max_tokens=20)
        (root,) = [sp for sp in got.spans() if sp.parent is None]
        assert json.loads(root.attributes["gen_ai.input.messages"]) == MSG
        assert json.loads(root.attributes["gen_ai.output.messages"])[0]["content"] == "ok"
    finally:
        llm.reset()
        bootstrap._pipelines.pop(s, None)
        got.pipeline.close()


def test_health_lists_telemetry_only_when_on_and_passes_with_a_live_collector(project, monkeypatch):
    from elfctl.cli.main import app
    from tests.telemetry.receiver import Receiver

    monkeypatch.chdir(project)
    run = CliRunner().invoke(app, ["db", "migrate", "--json"], catch_exceptions=False)
    assert run.exit_code == 0
    off = CliRunner().invoke(app, ["health", "--json", "--component", "telemetry"], catch_exceptions=False)
    assert off.exit_code == 2 and "telemetry" in json.loads(off.stdout)["error"]["message"]  # no such component
    receiver = Receiver()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        on = CliRunner().invoke(app, ["health", "--json", "--component", "telemetry"], catch_exceptions=False)
        check = json.loads(on.stdout)["checks"]["telemetry"][0]
        assert on.exit_code == 0 and check["status"] == "pass" and check["observedValue"] == 0
        assert receiver.url in check["output"]
    finally:
        receiver.stop()
