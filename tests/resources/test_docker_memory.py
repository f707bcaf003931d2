"""A real fault on the real dockerd: a 2-replica team whose containers have a 64 MiB memory limit,
one of them filled (a tmpfs file counts against the container's memory) to a warning, then to a
critical level. `elfctl resources` reads it as Docker does; without --apply it only says what it
would do; `--apply` scales the team down to 1 replica, and once the memory is freed, back to 2:
each an actions-trail row."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_elfctl
from tests.contract.test_deploy_target import _wait_for
from tests.deploy.conftest import docker_env, engine, make_team, registry_address, team_name  # noqa: F401

LIMIT_MIB = 64


def _resources(project, env, *flags):
    proc = run_elfctl("resources", "--json", *flags, cwd=project, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    return proc, json.loads(proc.stdout)


def _container(data, name):
    found = [r for r in data["resources"]["docker"]["readings"] if r["subject"] == f"container:{name}"]
    assert found, data["resources"]["docker"]
    return found[0]


def _fill(engine, name: str, mib: int) -> None:  # noqa: F811
    code, out = engine.exec(name, ["sh", "-c", f"dd if=/dev/zero of=/dev/shm/fill bs=64k count={mib * 16} 2>&1"])
    assert code == 0, out


def _used(engine, name: str) -> float:  # noqa: F811
    from elfctl.services.resources.containers import _memory

    used, limit = _memory(engine.stats(name))
    return used / (LIMIT_MIB * 2**20) * 100


def _fill_held(engine, name: str, mib: int) -> None:  # noqa: F811
    """Fill up to the critical level, and free it all only when told over TCP (port 9999): a
    `docker exec` into a container that full is OOM-killed (runc's own process is charged to it)."""
    ex = engine.api.exec_create(name, ["sh", "-c", f"dd if=/dev/zero of=/dev/shm/hot bs=64k count={mib * 16} "
                                                   f"2>/dev/null; nc -l -p 9999 >/dev/null; rm -f /dev/shm/*"])
    engine.api.exec_start(ex["Id"], detach=True)


def _release(engine, env, name: str) -> None:  # noqa: F811
    import socket

    from elfctl.adapters.docker_proxy import network_address

    address = network_address(engine.inspect(name), env["ELFCTL_DEPLOY_NETWORK"])
    with socket.create_connection((address, 9999), timeout=5) as sock:
        sock.sendall(b"free\n")


def _actions(project, env):
    import sqlite3

    with sqlite3.connect(project / ".elf" / "elf.db") as db:
        db.row_factory = sqlite3.Row
        # the monitor's own rows (deploy's registry registration is in the same trail)
        return [dict(r) for r in db.execute("SELECT * FROM platform_actions WHERE resource <> 'registry' ORDER BY ts")]


@pytest.fixture
def team(project, docker_env, team_name, engine):  # noqa: F811
    env = {**docker_env, "ELFCTL_RESOURCES_TIMEOUT_S": "20",  # a loaded CI host: no timeouts here
           "ELFCTL_RESOURCES_CPU_WARNING": "1000", "ELFCTL_RESOURCES_CPU_CRITICAL": "1000"}  # host cpu: not ours
    folder = make_team(project, env, team_name, replicas=2)
    text = (folder / "team.yaml").read_text().replace("memory: 128Mi", f"memory: {LIMIT_MIB}Mi")
    (folder / "team.yaml").write_text(text)
    proc = run_elfctl("deploy", team_name, cwd=project, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    yield team_name, env
    run_elfctl("infra", "down", cwd=project, env=env)


def _replicas(engine, env, team):  # noqa: F811
    from elfctl.adapters.docker_target import DockerTarget

    return DockerTarget(engine, network=env["ELFCTL_DEPLOY_NETWORK"], prefix=env["ELFCTL_DEPLOY_PREFIX"]).status(team)


def test_memory_driven_to_the_limit_scales_the_team_down_and_back(project, team, engine):  # noqa: F811
    name, env = team
    st = _replicas(engine, env, name)
    assert st["desired"] == st["ready"] == 2, st
    first = st["endpoints"][0].rsplit(":", 1)[0]

    _proc, data = _resources(project, env)
    base = _container(data, first)
    assert base["status"] == "healthy" and base["team"] == name, base
    assert f"of its {LIMIT_MIB}.0 MiB memory limit" in base["detail"]

    _fill(engine, first, int(LIMIT_MIB * 0.89 - LIMIT_MIB * base["value"] / 100))
    proc, data = _resources(project, env)
    warm = _container(data, first)
    assert warm["status"] == "warning" and 85 <= warm["value"] < 95, warm
    assert data["resources"]["docker"]["status"] == "warning"
    assert not [s for s in data["policy"] if s["strategy"] == "scale_down"], data["policy"]

    _fill_held(engine, first, int(LIMIT_MIB * (0.975 - warm["value"] / 100)))  # the kernel keeps ~1 MiB back
    assert _wait_for(lambda: _used(engine, first) >= 95.5), _used(engine, first)
    proc, data = _resources(project, env)
    hot = _container(data, first)
    assert hot["status"] == "critical" and 95 <= hot["value"] < 100, hot
    assert proc.returncode == 1 and data["status"] == "critical" and "docker" in proc.stderr + proc.stdout
    down = [s for s in data["policy"] if s["strategy"] == "scale_down"]
    assert [(s["target"], s["result"]) for s in down] == [(name, "would")], data["policy"]
    assert _replicas(engine, env, name)["desired"] == 2 and _actions(project, env) == []  # a dry run changes nothing

    proc, data = _resources(project, env, "--apply")
    down = [s for s in data["policy"] if s["strategy"] == "scale_down"]
    assert [s["result"] for s in down] == ["ok: 2 -> 1 replicas"], data["policy"]
    assert data["applied"] is True
    st = _replicas(engine, env, name)
    assert st["desired"] == st["ready"] == 1 and st["endpoints"][0].startswith(first), st
    rows = _actions(project, env)
    assert [(r["strategy"], r["team"], r["result"], r["actor"]) for r in rows] == \
        [("scale_down", name, "ok: 2 -> 1 replicas", "resources --apply")]
    assert rows[0]["resource"] in ("docker", "memory") and f"container:{first} critical at" in rows[0]["trigger"]

    proc, data = _resources(project, env, "--apply")  # still critical, already at the minimum: nothing more
    assert not [s for s in data["policy"] if s["result"].startswith("ok")], data["policy"]
    assert _replicas(engine, env, name)["desired"] == 1 and len(_actions(project, env)) == 1

    _release(engine, env, first)
    assert _wait_for(lambda: _used(engine, first) < 50), _used(engine, first)
    proc, data = _resources(project, env, "--apply")
    assert proc.returncode == 0, proc.stdout
    back = [s for s in data["policy"] if s["strategy"] == "restore"]
    assert [s["result"] for s in back] == ["ok: 1 -> 2 replicas"], data["policy"]
    st = _replicas(engine, env, name)
    assert st["desired"] == st["ready"] == 2 and st["status"] == "pass", st
    rows = _actions(project, env)
    assert [(r["strategy"], r["result"]) for r in rows] == [("scale_down", "ok: 2 -> 1 replicas"),
                                                            ("restore", "ok: 1 -> 2 replicas")]
    proc, data = _resources(project, env, "--apply")  # recovered: nothing left to do
    assert data["policy"] == [] or all(s["result"] == "call path" for s in data["policy"]), data["policy"]
    assert len(_actions(project, env)) == 2
