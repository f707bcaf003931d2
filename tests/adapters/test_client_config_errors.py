"""A malformed Docker address or kubeconfig is the user's input (exit 2), named with where it came from."""

from __future__ import annotations

import json

import pytest
from tests.conftest import run_elfctl

from elfctl.adapters.docker_engine import DockerEngine
from elfctl.adapters.kubernetes import KubeCluster
from elfctl.errors import ConfigError, InputError


@pytest.fixture
def team_project(project):
    assert run_elfctl("team", "new", "alpha", cwd=project).returncode == 0
    return project


def test_docker_host_port_out_of_range_through_the_cli(team_project):
    proc = run_elfctl("--json", "logs", "alpha", cwd=team_project,
                      env={"ELFCTL_DOCKER_HOST": "tcp://256.1.1.1:99999"})
    assert proc.returncode == 2, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "invalid_input"
    assert error["message"] == ("docker.host (from env ELFCTL_DOCKER_HOST) 'tcp://256.1.1.1:99999' is not a "
                                "Docker engine address: Port out of range 0-65535")
    assert "tcp://HOST:PORT" in error["hint"] and "Traceback" not in proc.stderr


@pytest.mark.parametrize("host", ["bogus://x", "tcp://[::1", "tcp://h:abc"])
def test_malformed_docker_address_from_the_environment(monkeypatch, host):
    monkeypatch.setenv("DOCKER_HOST", host)
    with pytest.raises(InputError, match=r"^DOCKER_HOST \(environment\) .* is not a Docker engine address"):
        DockerEngine().ping()


def test_unreachable_docker_address_stays_unreachable():
    from tests.realservices import free_port

    from elfctl.errors import Unreachable

    with pytest.raises(Unreachable):
        DockerEngine(f"tcp://127.0.0.1:{free_port()}", timeout_s=2).ping()


def _api(tmp_path, text: str, context: str | None = None):
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    return KubeCluster(str(path), context).api, path


def test_kubeconfig_holding_a_string(tmp_path):
    with pytest.raises(ConfigError) as err:
        _api(tmp_path, '"just a string"\n')
    assert err.value.message == (f"kubeconfig {tmp_path / 'kubeconfig'} is not a kubeconfig: it holds a YAML "
                                 "str, not a mapping with clusters, contexts and users")
    assert err.value.exit_code == 2


def test_kubeconfig_missing_its_cluster(tmp_path):
    text = ("apiVersion: v1\nkind: Config\ncurrent-context: a\ncontexts:\n- name: a\n"
            "  context: {cluster: c, user: u}\nusers:\n- name: u\n  user: {token: s3cret-token}\n")
    with pytest.raises(ConfigError, match="context 'a' uses cluster 'c', which no 'clusters' entry defines") as err:
        _api(tmp_path, text)
    assert "s3cret" not in err.value.message


@pytest.mark.parametrize("text, said", [("clusters: [\n", "cannot be read as YAML"),
                                        ("clusters: {a: 1}\n", "'clusters' must be a list of named entries")])
def test_kubeconfig_bad_yaml_or_shape(tmp_path, text, said):
    with pytest.raises(ConfigError, match=said):
        _api(tmp_path, text)


def test_bad_kubeconfig_through_the_cli(team_project, tmp_path):
    bad = tmp_path / "kc"
    bad.write_text("- a list\n- not a config\n")
    proc = run_elfctl("logs", "alpha", "--target", "kubernetes", cwd=team_project, env={"KUBECONFIG": str(bad)})
    assert proc.returncode == 2
    assert f"error: kubeconfig {bad} is not a kubeconfig: it holds a YAML list" in proc.stderr
    assert "Traceback" not in proc.stderr
