"""`elfctl infra up` with only SUPABASE_URL/SUPABASE_KEY: the gateway container runs on the REST store.

The PostgREST-compatible test server listens on the platform network's bridge address with https (a
throwaway CA made here, named by `supabase.ca_file` in the project, which the container mounts): the
address and scheme the container and this host both use, as a real project's https://<ref>.supabase.co
would be. The LLM stub is reached from the container through a relay on the same address."""

from __future__ import annotations

import json
import ssl
import subprocess
import time

import openai
import pytest

from elfctl.adapters.postgres import PostgresStore
from elfctl.services.gateway import keys
from tests import realservices
from tests.conftest import run_elfctl
from tests.deploy.conftest import docker_env, engine, registry_address  # noqa: F401
from tests.deploy.test_infra_gateway import BUILD_TIMEOUT, remove_gateway
from tests.deploy.test_infra_gateway_e2e import Relay
from tests.gateway.conftest import write_team
from tests.supabase.conftest import jwt_like

pytestmark = [pytest.mark.docker, pytest.mark.slow]
MSG = [{"role": "user", "content": "hello"}]


def _tls(ip: str, folder) -> ssl.SSLContext:
    """A CA (folder/ca.pem) and a server certificate for `ip` signed by it; the server's context."""
    def run(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "2", "-subj", "/CN=elfctl test CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "srv.key",
        "-out", "srv.csr", "-subj", f"/CN={ip}")
    (folder / "san.ext").write_text(f"subjectAltName=IP:{ip}\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "srv.pem",
        "-days", "2", "-extfile", "san.ext")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(folder / "srv.pem", folder / "srv.key")
    return ctx


@pytest.fixture
def bridge_rest(supa_pg_url, docker_env, engine, project, tmp_path_factory):  # noqa: F811
    """(server, bridge ip): the REST test server on the platform network's host address, over https."""
    from tests.postgrest_server import PostgrestServer

    ip = engine.api.inspect_network(docker_env["ELFCTL_DEPLOY_NETWORK"])["IPAM"]["Config"][0]["Gateway"]
    certs = tmp_path_factory.mktemp("certs")
    ctx = _tls(ip, certs)
    (project / "ca.pem").write_bytes((certs / "ca.pem").read_bytes())  # inside the project: the container sees it
    server = PostgrestServer(supa_pg_url, service_key=jwt_like("service_role"), anon_key=jwt_like("anon"))
    server.start(host=ip, tls=ctx)
    server.service_key = next(k for k, r in server.keys.items() if r == "service_role")
    yield server, ip
    server.stop()


def _up(project, env) -> dict:
    # teams are deployed with SUPABASE_DB_URL (deploy locks and history need SQL): that step is skipped
    proc = run_elfctl("infra", "up", "--json", "--skip", "teams", cwd=project, env=env, timeout=BUILD_TIMEOUT)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert env["SUPABASE_KEY"] not in proc.stdout + proc.stderr
    assert "needs a database connection" not in proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["health"]["status"] != "fail", {k: v for k, v in doc["health"]["checks"].items()
                                               if v[0]["status"] == "fail"}
    return doc


def test_infra_up_with_only_the_rest_keys_runs_the_gateway_on_the_rest_store(
        bridge_rest, supa_pg_url, docker_env, engine, project, llm_server):  # noqa: F811
    rest, ip = bridge_rest
    prefix = docker_env["ELFCTL_DEPLOY_PREFIX"]
    with open(project / "elfctl.toml", "a") as f:
        f.write('\n[supabase]\nca_file = "ca.pem"\n')
    write_team(project, "alpha", "gpt-4o-mini")
    relay = Relay(ip, int(llm_server.url.rsplit(":", 1)[1].split("/")[0]))
    port = realservices.free_port()
    env = {**docker_env, "SUPABASE_URL": rest.url, "SUPABASE_KEY": rest.service_key, "ELFCTL_STORE_URL": "",
           "SUPABASE_DB_URL": "", "ELFCTL_GATEWAY_PORT": str(port), "ELFCTL_DOCKER_TIMEOUT_S": "120",
           "ELFCTL_DOCKER_BUILD_TIMEOUT_S": str(BUILD_TIMEOUT), "OPENAI_API_KEY": "sk-rest-gw-0123456789",
           "OPENAI_BASE_URL": f"http://{ip}:{relay.port}/v1"}
    db = PostgresStore(supa_pg_url)
    try:
        first = _up(project, env)
        steps = {s["name"]: s for s in first["steps"]}
        assert steps["gateway"]["outcome"] == "changed", steps["gateway"]
        assert "Supabase REST API" in steps["gateway"]["details"]
        [gw] = first["health"]["checks"]["gateway"]
        assert gw["status"] == "pass", gw
        [creds] = first["health"]["checks"]["creds"]
        assert creds["status"] == "warn" and "SUPABASE_DB_URL" in creds["hint"], creds

        key = keys.mint(db, "alpha")  # the operator's side (deploy mints these), through the database
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=120)
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5)
        except openai.APIError:
            pytest.fail("the call failed; the gateway said:\n" + "\n".join(engine.logs(f"{prefix}-gateway", tail=60)))
        deadline = time.monotonic() + 30
        while not (rows := db.query("SELECT team, model FROM api_usage")) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert rows == [{"team": "alpha", "model": "gpt-4o-mini"}]
        assert any(r["path"] == "/rest/v1/rpc/elfctl_record_usage" for r in rest.requests)

        again = _up(project, env)  # idempotent: nothing to change
        assert {s["name"]: s for s in again["steps"]}["gateway"]["outcome"] == "unchanged"
        shown = run_elfctl("infra", "status", "--json", cwd=project, env=env, timeout=120)
        assert rest.service_key not in shown.stdout + shown.stderr
        logs = engine.logs(f"{prefix}-gateway", tail=200)
        text = "\n".join(logs)
        assert rest.service_key not in text and "needs a database connection" not in text, text[-2000:]
    finally:
        db.close()
        relay.close()
        remove_gateway(engine, prefix)


@pytest.mark.parametrize("case", ["loopback", "ca_outside"])
def test_a_rest_store_the_container_cannot_use_is_refused_before_anything_starts(
        case, rest, docker_env, engine, project, tmp_path_factory):  # noqa: F811
    """A SUPABASE_URL on 127.0.0.1 (the container itself, inside it), or a supabase.ca_file outside the
    project (the container sees only the project): exit 2, one line naming the setting, nothing started."""
    write_team(project, "alpha", "gpt-4o-mini")
    env = {**docker_env, "SUPABASE_URL": rest.url, "SUPABASE_KEY": rest.service_key, "ELFCTL_STORE_URL": "",
           "SUPABASE_DB_URL": "", "ELFCTL_GATEWAY_PORT": str(realservices.free_port())}
    if case == "ca_outside":
        outside = tmp_path_factory.mktemp("elsewhere") / "ca.pem"
        outside.write_text("")
        # the URL is acceptable here (a non-loopback https address); the CA file is the problem
        env.update({"SUPABASE_URL": "https://10.0.0.1:8443", "ELFCTL_SUPABASE_CA_FILE": str(outside)})
    proc = run_elfctl("infra", "up", "--only", "gateway", cwd=project, env=env, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    expected = "SUPABASE_URL names 127.0.0.1" if case == "loopback" else "supabase.ca_file"
    assert "step 'gateway'" in proc.stderr and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and rest.service_key not in proc.stdout + proc.stderr
    assert engine.inspect(f"{docker_env['ELFCTL_DEPLOY_PREFIX']}-gateway") is None
