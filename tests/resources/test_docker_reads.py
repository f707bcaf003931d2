"""The Docker adapter's reads over the engine's unix socket without docker-py (info, list, inspect):
the same answers docker-py gets from the real engine, docker-py left unimported by `elfctl resources`,
and the same errors when the socket is missing, hangs or answers something that is not HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid

import pytest

from tests.deploy.conftest import docker_env, engine, registry_address  # noqa: F401 (fixtures)


def _fresh():
    from elfctl.adapters.docker_engine import DockerEngine

    return DockerEngine(timeout_s=30)


def test_socket_reads_match_docker_py(engine, docker_env):  # noqa: F811
    prefix = docker_env["ELFCTL_DEPLOY_PREFIX"]
    name = f"{prefix}-reads-{uuid.uuid4().hex[:6]}"
    engine.run(name, docker_env["ELFCTL_DEPLOY_BASE_IMAGE"], network=docker_env["ELFCTL_DEPLOY_NETWORK"],
               labels={"elfctl.prefix": prefix, "elfctl.role": "app"}, env={}, command=["sleep", "60"],
               restart=False, mem_limit="40m")
    try:
        fresh = _fresh()
        assert fresh._socket() is not None  # the path under test, not docker-py
        labels = {"elfctl.prefix": prefix, "elfctl.role": "app"}
        ours = fresh.containers(labels, all_=False)
        theirs = engine.api.containers(all=False, filters={"label": [f"{k}={v}" for k, v in labels.items()]})
        assert [c["Id"] for c in ours] == [c["Id"] for c in theirs] and len(ours) == 1
        assert ours[0]["Names"] == [f"/{name}"]
        assert fresh.containers({"elfctl.prefix": prefix, "elfctl.role": "nosuch"}) == []
        got = fresh.inspect(name)
        assert got["Id"] == ours[0]["Id"] and got["HostConfig"]["Memory"] == 40 * 2**20
        assert fresh.inspect(f"{name}-absent") is None
        assert fresh.inspect("../../info") is None  # a name is one path segment, never another endpoint
        assert fresh.info()["DockerRootDir"] == engine.api.info()["DockerRootDir"]
        assert "docker" not in sys.modules or fresh._api is None  # the fresh engine never built a docker-py client
    finally:
        engine.remove(name, grace_s=0)


def _serve(path: str, reply: bytes | None) -> socket.socket:
    """A unix socket that answers each connection with `reply`, or never answers (None)."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    held = []

    def loop():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)
            conn.recv(65536)
            if reply is not None:
                conn.sendall(reply)
                conn.close()

    threading.Thread(target=loop, daemon=True).start()
    return srv


@pytest.mark.parametrize("reply, said", [
    (None, "got no answer in time"),
    (b"SSH-2.0-OpenSSH_9.2\r\n", "not reachable"),
])
def test_a_hung_or_foreign_socket_is_unreachable(tmp_path, reply, said):
    from elfctl.adapters.docker_engine import DockerEngine
    from elfctl.errors import Unreachable

    path = str(tmp_path / "d.sock")
    srv = _serve(path, reply)
    try:
        eng = DockerEngine(f"unix://{path}", timeout_s=0.5)
        with pytest.raises(Unreachable) as err:
            eng.info()
        assert said in err.value.message and path in err.value.message
        with pytest.raises(Unreachable):
            eng.containers({"elfctl.prefix": "x"})
    finally:
        srv.close()


def test_an_engine_error_answer_is_an_operation_failure(tmp_path):
    from elfctl.adapters.docker_engine import DockerEngine
    from elfctl.errors import OperationFailed, Unreachable

    path = str(tmp_path / "d.sock")
    body = json.dumps({"message": "page not found"}).encode()
    srv = _serve(path, b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
                       b"content-length: %d\r\n\r\n%s" % (len(body), body))
    try:
        with pytest.raises(OperationFailed) as err:
            DockerEngine(f"unix://{path}", timeout_s=2).info()
        assert not isinstance(err.value, Unreachable)
        assert "500 page not found" in err.value.message
    finally:
        srv.close()


def test_resources_on_a_missing_socket_says_the_engine_is_unreachable(tmp_path):
    """The docker type is critical with the address, and docker-py is never imported."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/none.sock", "NO_COLOR": "1",
           "ELFCTL_REGISTRY_URL": "127.0.0.1:9"}
    (tmp_path / "elfctl.toml").write_text("")
    probe = ("import sys, runpy; sys.argv = ['elfctl', 'resources', '--json'];\n"
             "try:\n    runpy.run_module('elfctl', run_name='__main__')\n"
             "finally:\n    sys.stderr.write('DOCKERPY=%s' % ('docker' in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    reading = doc["resources"]["docker"]["readings"][0]
    assert reading["status"] == "critical"
    assert "not reachable" in reading["detail"] and "none.sock" in reading["detail"]
    assert "DOCKERPY=False" in proc.stderr
