"""The Docker adapter's stats of a local container, read from its cgroup, agree with what the
engine's own stats API says for the same container (limit exactly, usage closely), and a remote
engine or an unknown container is asked through the API."""

from __future__ import annotations

import uuid

from tests.contract.test_deploy_target import _wait_for
from tests.deploy.conftest import docker_env, engine, registry_address  # noqa: F401 (fixtures)


def test_cgroup_stats_match_the_engines_api(engine, docker_env):  # noqa: F811
    from elfctl.adapters.docker_engine import cgroup_stats

    name = f"{docker_env['ELFCTL_DEPLOY_PREFIX']}-stats-{uuid.uuid4().hex[:6]}"
    cid = engine.run(name, docker_env["ELFCTL_DEPLOY_BASE_IMAGE"], network=docker_env["ELFCTL_DEPLOY_NETWORK"],
                     labels={"elfctl.prefix": docker_env["ELFCTL_DEPLOY_PREFIX"]}, env={},
                     command=["sh", "-c", "dd if=/dev/zero of=/dev/shm/x bs=1M count=8; sleep 60"],
                     restart=False, mem_limit="48m")
    try:  # the tmpfs file counts against the container's memory, once dd has written it
        assert _wait_for(lambda: engine.stats(name, cid)["memory_stats"]["usage"] >= 8 * 2**20)
        api = engine.api.stats(name, stream=False, one_shot=True)
        ours = engine.stats(name, cid)
        assert ours["memory_stats"]["limit"] == api["memory_stats"]["limit"] == 48 * 2**20
        assert abs(ours["memory_stats"]["usage"] - api["memory_stats"]["usage"]) < 2 * 2**20, (ours, api)
        later = engine.stats(name, cid)
        assert later["cpu_stats"]["cpu_usage"]["total_usage"] >= ours["cpu_stats"]["cpu_usage"]["total_usage"] > 0
        assert later["cpu_stats"]["system_cpu_usage"] >= ours["cpu_stats"]["system_cpu_usage"] > 0
        assert cgroup_stats(cid) is not None  # a local engine: read from the cgroup, not asked
        assert cgroup_stats("0" * 64) is None  # no such cgroup: the adapter asks the API instead
    finally:
        engine.remove(name, grace_s=0)
