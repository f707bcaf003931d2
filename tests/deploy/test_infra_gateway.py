"""`infra up`'s gateway step on the real engine: the gateway container runs, is healthy, answers on
127.0.0.1, comes back after a crash, is left alone by a re-run, replaced when a setting changes, and
removed by `infra down`. The image is built once (from Debian's packages and a host-built wheelhouse)
and not again while elfctl and its dependencies are the same."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request

import pytest

from elfctl.errors import ElfError
from tests import realservices
from tests.conftest import run_elfctl
from tests.deploy.conftest import make_team

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BUILD_TIMEOUT = 1800  # the first build of the image: Debian rootfs (~20 s), wheelhouse, pip install (minutes)


@pytest.fixture
def gw_env(docker_env, project):
    env = {**docker_env, "ELFCTL_GATEWAY_PORT": str(realservices.free_port()), "ELFCTL_DOCKER_TIMEOUT_S": "120",
           "ELFCTL_DOCKER_BUILD_TIMEOUT_S": str(BUILD_TIMEOUT), "OPENAI_API_KEY": "sk-gateway-canary-0123456789"}
    assert run_elfctl("db", "migrate", cwd=project, env=env).returncode == 0
    return env


def _up(project, env, *args):
    proc = run_elfctl("infra", "up", "--json", *args, cwd=project, env=env, timeout=BUILD_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert env["OPENAI_API_KEY"] not in proc.stdout + proc.stderr  # handed to the gateway, never printed
    return {s["name"]: s for s in json.loads(proc.stdout)["steps"]}


def _health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
        return json.loads(resp.read())


def _until(what, check, timeout_s=120.0):
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f}s"
        time.sleep(0.5)


def remove_gateway(engine, prefix: str) -> None:
    """The session's gateway container and images (not the shared Python image)."""
    engine.remove(f"{prefix}-gateway", grace_s=0)
    try:  # best effort: a busy shared engine may take longer than its timeout to delete 700 MB
        for img in engine.images(label="elfctl.role=gateway"):
            for ref in img.get("RepoTags") or []:
                if ref.startswith(f"{prefix}/gateway:"):
                    engine.remove_image(ref)
    except ElfError:
        pass


def test_gateway_container_lifecycle(project, gw_env, engine, team_name):
    prefix, port = gw_env["ELFCTL_DEPLOY_PREFIX"], int(gw_env["ELFCTL_GATEWAY_PORT"])
    name = f"{prefix}-gateway"
    make_team(project, gw_env, team_name)  # its LLM policy names gpt-4o-mini: the gateway gets openai's key
    try:
        steps = _up(project, gw_env, "--skip", "teams")
        assert steps["gateway"]["outcome"] == "changed", steps["gateway"]
        assert f"http://127.0.0.1:{port}" in steps["gateway"]["details"]
        found = engine.inspect(name)
        assert found["State"]["Running"] and found["State"]["Health"]["Status"] == "healthy"
        assert found["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        assert found["HostConfig"]["PortBindings"][f"{port}/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        assert "elfctl-gateway" in found["NetworkSettings"]["Networks"][prefix]["Aliases"]
        assert found["Config"]["Healthcheck"]["Test"][0] == "CMD"  # the image's HEALTHCHECK
        # The provider key reaches the platform's own container (and no team's: test_gateway_canary).
        assert f"OPENAI_API_KEY={gw_env['OPENAI_API_KEY']}" in found["Config"]["Env"]
        assert _health(port)["status"] in ("pass", "warn")
        image = found["Config"]["Image"]
        assert engine.image_labels(image)["elfctl.content"] == image.rsplit(":", 1)[1]

        # Re-run: same image, same settings -> nothing touched, nothing built.
        again = _up(project, gw_env, "--skip", "teams")
        assert again["gateway"]["outcome"] == "unchanged", again["gateway"]
        assert "built" not in again["gateway"]["details"]
        assert engine.inspect(name)["Id"] == found["Id"]

        # A crash (kill -9 of the gateway process): Docker restarts it and it answers again.
        os.kill(found["State"]["Pid"], signal.SIGKILL)
        _until("restarted", lambda: (engine.inspect(name) or {}).get("RestartCount", 0) >= 1)
        _until("healthy again", lambda: engine.inspect(name)["State"].get("Health", {}).get("Status") == "healthy")
        assert _health(port)["status"] in ("pass", "warn")
        assert engine.inspect(name)["Id"] == found["Id"]

        # A changed setting replaces the container (same image: not rebuilt).
        changed = _up(project, {**gw_env, "ELFCTL_LLM_TIMEOUT_S": "12"}, "--skip", "teams")
        assert changed["gateway"]["outcome"] == "changed" and "replaced" in changed["gateway"]["details"]
        assert "built gateway image" not in changed["gateway"]["details"]
        now = engine.inspect(name)
        assert now["Id"] != found["Id"] and "ELFCTL_LLM_TIMEOUT_S=12.0" in now["Config"]["Env"]

        down = run_elfctl("infra", "down", "--json", cwd=project, env=gw_env, timeout=120)
        assert down.returncode == 0, down.stderr
        assert f"gateway {name}" in json.loads(down.stdout)["stopped"]
        assert engine.inspect(name) is None
    finally:
        remove_gateway(engine, prefix)


def test_store_on_host_loopback_is_refused_before_anything_starts(project, gw_env, engine):
    env = {**gw_env, "ELFCTL_STORE_URL": "postgresql://elf:pw@127.0.0.1:5432/elf"}
    proc = run_elfctl("infra", "up", "--only", "gateway", cwd=project, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "step 'gateway'" in proc.stderr and "store.url names 127.0.0.1" in proc.stderr
    assert "--skip gateway" in proc.stderr and "Traceback" not in proc.stderr and "pw@" not in proc.stderr
    assert engine.inspect(f"{gw_env['ELFCTL_DEPLOY_PREFIX']}-gateway") is None


def test_python_image_from_debian_when_it_cannot_be_pulled(engine, docker_env):
    """deploy.python_image cannot be pulled here: the image is built from Debian's packages once, and a
    re-run neither pulls nor builds."""
    from elfctl.adapters.local_images import FALLBACK_FOR, ensure_python_image

    ref = f"{docker_env['ELFCTL_DEPLOY_PREFIX']}/python:3.11"
    source = "elfctl-test.invalid/python:3.11-slim"
    try:
        made, details = ensure_python_image(engine, source, ref)
        assert made and "could not be pulled" in details and "built python image" in details, details
        assert engine.image_labels(ref)[FALLBACK_FOR] == source
        again, details = ensure_python_image(engine, source, ref)
        assert not again and "present" in details
    finally:
        engine.remove_image(ref)
