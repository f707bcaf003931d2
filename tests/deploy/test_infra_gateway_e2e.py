"""End to end on the real engine: `infra up` runs the gateway and the example team; with no provider
key the team says "no provider key configured" and its health is warn (infra up exits 0); with a key
(the loopback LLM stub as the provider, reached from the gateway container) a question to the team
goes through the gateway and lands in the ledger: `cost report --by team`, `--by agent`, `--by revision`."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests import realservices
from tests.conftest import REPO, run_elfctl
from tests.deploy.test_infra_gateway import BUILD_TIMEOUT, remove_gateway

pytestmark = [pytest.mark.docker, pytest.mark.slow]


class Relay:
    """TCP relay from the Docker network's host address to the stub on 127.0.0.1: the gateway
    container reaches the host there, never its loopback."""

    def __init__(self, host: str, target_port: int):
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.target = target_port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def _ask(port: int, question: str) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/ask", data=json.dumps({"question": question}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _up(project, env) -> dict:
    proc = run_elfctl("infra", "up", "--json", cwd=project, env=env, timeout=BUILD_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_example_team_asks_through_the_gateway_into_the_ledger(project, docker_env, team_name, engine, llm_server):
    prefix = docker_env["ELFCTL_DEPLOY_PREFIX"]
    team_port = realservices.free_port()
    folder = project / "teams" / team_name
    shutil.copytree(REPO / "teams" / "example-team", folder)
    text = (folder / "team.yaml").read_text().replace("name: example-team", f"name: {team_name}")
    (folder / "team.yaml").write_text(text.replace("host_port: 18080", f"host_port: {team_port}"))
    env = {k: v for k, v in docker_env.items() if k != "OPENAI_API_KEY"}
    env.update({"ELFCTL_GATEWAY_PORT": str(realservices.free_port()), "ELFCTL_DOCKER_TIMEOUT_S": "120",
                "ELFCTL_DOCKER_BUILD_TIMEOUT_S": str(BUILD_TIMEOUT)})
    gateway_ip = engine.api.inspect_network(prefix)["IPAM"]["Config"][0]["Gateway"]
    relay = Relay(gateway_ip, int(llm_server.url.split(":")[-1].split("/")[0]))
    try:
        # No provider key anywhere: the team runs, says so, and its health is a warning.
        first = _up(project, env)
        assert first["health"]["status"] == "warn", first["health"]
        [team] = first["health"]["checks"][f"team:{team_name}"]
        assert team["status"] == "warn" and "no provider key configured for openai" in team["output"], team
        code, doc = _ask(team_port, "hello?")
        assert code == 503 and "no provider key configured" in doc["error"], doc

        # A provider key (and the stub as the provider): the gateway is replaced, the team is not.
        env.update({"OPENAI_API_KEY": "sk-e2e-provider-0123456789",
                    "OPENAI_BASE_URL": f"http://{gateway_ip}:{relay.port}/v1"})
        llm_server.answer("*", prompt=21, completion=8, content="forty-two")
        second = _up(project, env)
        steps = {s["name"]: s for s in second["steps"]}
        assert steps["gateway"]["outcome"] == "changed" and steps["teams"]["outcome"] == "unchanged"
        deadline = time.monotonic() + 30
        while True:  # the team reads the gateway's answer at most once a second
            code, doc = _ask(team_port, "what is six times seven?")
            if code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert code == 200 and doc["answer"] == "forty-two", doc
        assert llm_server.calls("gpt-4o-mini") == 1
        assert llm_server.auth[-1] == "Bearer sk-e2e-provider-0123456789"  # the gateway's key, not the team's

        deadline = time.monotonic() + 10
        while True:  # the gateway's background writer records the row
            proc = run_elfctl("cost", "report", "--by", "team", "--json", cwd=project, env=env)
            assert proc.returncode == 0, proc.stderr
            rows = [r for r in json.loads(proc.stdout)["rows"] if r["key"] == team_name]
            if rows or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert rows and rows[0]["calls"] == 1 and rows[0]["prompt_tokens"] == 21, rows
        proc = run_elfctl("cost", "report", "--by", "agent", "--json", cwd=project, env=env)
        assert [r["calls"] for r in json.loads(proc.stdout)["rows"] if r["key"] == f"{team_name} answerer"] == [1]
        proc = run_elfctl("cost", "report", "--by", "revision", "--json", cwd=project, env=env)
        assert [r["calls"] for r in json.loads(proc.stdout)["rows"] if r["key"] == f"{team_name} r1"] == [1]
    finally:
        relay.close()
        run_elfctl("team", "rm", team_name, "--yes", cwd=project, env=env, timeout=120)
        remove_gateway(engine, prefix)
