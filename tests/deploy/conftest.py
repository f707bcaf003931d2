"""Real Docker engine + real registry (Debian's docker-registry) for the deploy tests.

Every name these tests create carries a per-session prefix (containers, proxies, network, base image)
or a per-test team name, and the session removes them at the end: dockerd is shared.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from tests import realservices
from tests.conftest import run_elfctl, unavailable

TEST_HEALTH = """\
health:
  path: /health
  period_s: 0.2
  timeout_s: 1
  success_threshold: 2
  failure_threshold: 2
  start_timeout_s: 20
  soak_s: 0.6
"""


@pytest.fixture(scope="session")
def engine():
    from elfctl.adapters.docker_engine import DockerEngine
    from elfctl.errors import ElfError

    try:
        realservices.ensure_dockerd()
        eng = DockerEngine(timeout_s=30, build_timeout_s=300)
        eng.ping()
    except (RuntimeError, ElfError) as exc:
        unavailable(f"Docker engine unavailable: {exc}")
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def registry_address():
    address = os.environ.get("ELFCTL_TEST_REGISTRY")
    if address:
        yield address
        return
    folder = Path(tempfile.mkdtemp(prefix="elfctl-registry-"))
    try:
        address, _pid = realservices.start_registry(folder)
    except RuntimeError as exc:
        unavailable(f"cannot start docker-registry: {exc}")
    yield address
    realservices.stop_registry(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def docker_env(engine, registry_address):
    """ELFCTL_* settings that point elfctl at the test registry and this session's own names."""
    from elfctl.adapters.local_images import ensure_base_image

    tag = uuid.uuid4().hex[:8]
    prefix = f"elft{tag}"
    env = {
        "ELFCTL_REGISTRY_URL": registry_address,
        "ELFCTL_DEPLOY_PREFIX": prefix,
        "ELFCTL_DEPLOY_NETWORK": prefix,
        "ELFCTL_DEPLOY_BASE_IMAGE": f"{prefix}/base:busybox",
        "ELFCTL_DEPLOY_LOCK_TTL_S": "10",
        # `team new` names gpt-4o-mini: without a key `elfctl health` warns on llm:openai (issue 7).
        "OPENAI_API_KEY": "sk-test-deploy-" + tag,
        # These tests are about deploys, not timeouts: a loaded 2-core CI machine can take more than
        # the default 5 s for `docker exec` in the team probe (tests/health covers the timeout).
        "ELFCTL_HEALTH_TIMEOUT_S": "30",
    }
    ensure_base_image(engine, env["ELFCTL_DEPLOY_BASE_IMAGE"])
    engine.ensure_network(prefix, {"elfctl.managed": "true"})
    yield env
    for c in engine.containers({"elfctl.prefix": prefix}):
        engine.remove(c["Id"], grace_s=0)
    for img in engine.images(label="elfctl.team"):
        for ref in img.get("RepoTags") or []:
            if f"/elfctl/t{tag}" in ref:  # any registry: some tests run their own
                engine.remove_image(ref)
    engine.remove_network(prefix)
    engine.remove_image(env["ELFCTL_DEPLOY_BASE_IMAGE"])


@pytest.fixture
def team_name(docker_env):
    """A team name unique to this test (shares the session's tag for cleanup)."""
    return "t" + docker_env["ELFCTL_DEPLOY_PREFIX"][4:] + "-" + uuid.uuid4().hex[:6]


def make_team(
    project: Path,
    env: dict,
    name: str,
    health_doc: str = '{"status": "pass"}',
    page: str = "v1",
    replicas: int = 1,
) -> Path:
    """`elfctl team new` with short health timings for tests, then set the page and health document."""
    proc = run_elfctl("db", "migrate", cwd=project, env=env)
    assert proc.returncode == 0, proc.stderr
    proc = run_elfctl("team", "new", name, cwd=project, env=env)
    assert proc.returncode == 0, proc.stderr
    folder = project / "teams" / name
    text = (folder / "team.yaml").read_text()
    start, end = text.index("health:"), text.index("env:")
    text = text[:start] + TEST_HEALTH + text[end:]
    text = text.replace("replicas: 1", f"replicas: {replicas}")
    (folder / "team.yaml").write_text(text)
    set_version(folder, page, health_doc)
    return folder


def set_version(folder: Path, page: str, health_doc: str = '{"status": "pass"}') -> None:
    (folder / "www" / "index.html").write_text(page)
    (folder / "www" / "health").write_text(health_doc)
