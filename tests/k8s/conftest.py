"""Kubernetes fixtures: kmock's emulator over HTTP (driven by the real `kubernetes` client), the
controller that plays the cluster's part, a kubeconfig pointing at it, and a project with a team."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tests.k8s.emulator import Controller, Emulator

TEAM_YAML = """\
name: mkt
port: 8080
replicas: 2
health: {path: /healthz, start_timeout_s: 30}
env: {LOG_LEVEL: info}
secrets: [MKT_API_KEY]
resources: {cpu: 250m, memory: 128Mi}
"""
SECRET_VALUE = "sk-live-do-not-print-0123456789"


def image(tag: str) -> str:
    """An image reference pinned by a digest that differs per tag."""
    import hashlib

    return f"registry.test:5000/mkt:{tag}@sha256:{hashlib.sha256(tag.encode()).hexdigest()}"


def closed_registry() -> dict:
    """The image registry on a closed port: `infra up --only ...` does not start it, so the health
    table that ends the run fails on it (exit 1) whatever listens on this machine's port 5000."""
    from tests.realservices import free_port

    return {"ELFCTL_REGISTRY_URL": f"127.0.0.1:{free_port()}"}


@pytest.fixture
def emulator():
    emu = Emulator().start()
    yield emu
    emu.stop()


@pytest.fixture
def controller(emulator):
    ctl = Controller(emulator).start()
    yield ctl
    ctl.stop()


@pytest.fixture
def kubeconfig(emulator, tmp_path, monkeypatch):
    path = emulator.kubeconfig(tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.fixture
def k8s_project(project, kubeconfig, monkeypatch):
    """A project whose deploy target is the emulated cluster, with team `mkt` and its secret value."""
    (project / "teams" / "mkt").mkdir(parents=True, exist_ok=True)
    (project / "teams" / "mkt" / "team.yaml").write_text(TEAM_YAML)
    (project / "teams" / "mkt" / "Dockerfile").write_text("FROM scratch\n")
    with open(project / "elfctl.toml", "a") as fh:
        fh.write(textwrap.dedent("""
            [kubernetes]
            namespace = "elf-test"
            registry = "registry.test:5000"
            poll_s = 0.05
            """))
    text = (project / "elfctl.toml").read_text()
    (project / "elfctl.toml").write_text(text.replace('target = "docker"', 'target = "kubernetes"'))
    monkeypatch.setenv("MKT_API_KEY", SECRET_VALUE)
    return project


@pytest.fixture
def target(k8s_project, controller):
    from elfctl.app import App
    from elfctl.output import Output
    app = App(Output(quiet=True), cwd=k8s_project)
    tgt = app.target
    yield tgt
    app.close()


@pytest.fixture
def spec(k8s_project):
    from elfctl.adapters.team_files import find

    return find(Path(k8s_project) / "teams", "mkt")


def real_kubeconfig() -> str | None:
    return os.environ.get("ELFCTL_TEST_KUBECONFIG")
