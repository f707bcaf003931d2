"""A team that names MCP servers gets them on Kubernetes as on Docker (tests/mcp/test_mcp_deploy.py):
a read-only `/run/secrets/mcp.json` whose path is in ELFCTL_MCP_CONFIG, here mounted from the team's
`<team>-mcp` Secret. The secret header's value is in that Secret only: never in the Pod spec, the
rendered YAML or any output. Real Docker build and registry push, the emulated cluster through the
real client."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import yaml

from tests.conftest import run_elfctl
from tests.deploy.conftest import docker_env, engine, make_team, registry_address, team_name  # noqa: F401 (fixtures)
from tests.mcp.conftest import PASS, stdio_command

NS = "elf-mcp"
PATH = "/run/secrets/mcp.json"


def _secret_doc(emulator, team) -> dict:
    obj = emulator.obj("v1/secrets", NS, f"{team}-mcp")
    assert obj is not None, "the team's mcp Secret was not written"
    text = (obj.get("stringData") or {}).get("mcp.json") or base64.b64decode(obj["data"]["mcp.json"]).decode()
    return json.loads(text)


def _mcp_parts(dep) -> tuple[dict, dict, dict]:
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    (env,) = [e for e in c["env"] if e["name"] == "ELFCTL_MCP_CONFIG"]
    (mount,) = [v for v in c["volumeMounts"] if v["mountPath"] == PATH]
    (vol,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    return env, mount, vol


def test_pods_mount_the_mcp_servers_file_from_a_secret(project, kubeconfig, emulator, controller,  # noqa: F811
                                                      docker_env, team_name):  # noqa: F811
    env = {**docker_env, "ELFCTL_KUBERNETES_NAMESPACE": NS, "ELFCTL_KUBERNETES_POLL_S": "0.05",
           "ELFCTL_STORE_URL": f"sqlite:///{project / '.elf' / 'elf.db'}", "ELFCTL_MASTER_KEY": PASS,
           "ELFCTL_CREDS_BACKEND": "file"}
    canary, rotated = f"canary-{uuid.uuid4().hex}", f"rotated-{uuid.uuid4().hex}"

    def elf(*args, input=None, rc=0):
        proc = run_elfctl(*args, cwd=project, env=env, input=input, timeout=300)
        assert proc.returncode == rc, proc.stderr
        assert canary not in proc.stdout + proc.stderr and rotated not in proc.stdout + proc.stderr
        return proc

    folder = make_team(project, env, team_name)
    elf("mcp", "add", "search", "--url", "http://search.internal:8080/mcp", "--header", "X-Region=eu",
        "--secret-header", "Authorization=SEARCH_AUTH")
    elf("mcp", "add", "files", "--command", stdio_command("stdio"), "--env", "ROOT=/data")
    yaml_path = folder / "team.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("mcp_servers: []", "mcp_servers: [search, files]"))
    elf("creds", "set", "SEARCH_AUTH", "--stdin", input=canary)

    # `k8s render`: the file by reference to the Secret, no value, no call to the cluster.
    rendered = elf("k8s", "render", team_name)
    (dep,) = [d for d in yaml.safe_load_all(rendered.stdout) if d["kind"] == "Deployment"]
    env_var, mount, vol = _mcp_parts(dep)
    assert env_var == {"name": "ELFCTL_MCP_CONFIG", "value": PATH}
    assert mount["readOnly"] is True and vol["secret"]["secretName"] == f"{team_name}-mcp"
    assert "Secret" not in [d["kind"] for d in yaml.safe_load_all(rendered.stdout)]
    assert emulator.k.calls == []

    first = json.loads(elf("deploy", team_name, "--target", "kubernetes", "--json").stdout)
    assert first["state"] == "switched"
    live = emulator.obj("apps/v1/deployments", NS, team_name)
    env_var, mount, vol = _mcp_parts(live)
    assert env_var["value"] == PATH and mount["readOnly"] is True and mount["subPath"] == "mcp.json"
    assert vol["secret"]["secretName"] == f"{team_name}-mcp" and vol["secret"]["items"] == [
        {"key": "mcp.json", "path": "mcp.json"}]
    assert canary not in json.dumps(live)  # the Pod spec holds the reference only
    doc = _secret_doc(emulator, team_name)
    assert doc["mcpServers"]["search"] == {
        "url": "http://search.internal:8080/mcp", "headers": {"X-Region": "eu", "Authorization": canary}}
    assert doc["mcpServers"]["files"]["env"] == {"ROOT": "/data"}
    for (r, _ns, _n), o in emulator.k.objects.items():  # the value is in that one Secret only
        if r.plural != "secrets" and not o.deleted:
            assert canary not in json.dumps(o.raw), r.plural

    # Unchanged: nothing written. A rotated credential rewrites the Secret and restarts the pods.
    writes = len(emulator.k.writes)
    assert json.loads(elf("deploy", team_name, "--target", "kubernetes", "--json").stdout)["state"] == "unchanged"
    assert emulator.k.writes[writes:] == []
    ids = live["spec"]["template"]["metadata"]["annotations"]["elfctl.dev/secret-id"]
    elf("creds", "rotate", "SEARCH_AUTH", "--stdin", input=rotated)
    again = json.loads(elf("deploy", team_name, "--target", "kubernetes", "--json").stdout)
    assert again["state"] == "switched"
    assert _secret_doc(emulator, team_name)["mcpServers"]["search"]["headers"]["Authorization"] == rotated
    live = emulator.obj("apps/v1/deployments", NS, team_name)
    assert live["spec"]["template"]["metadata"]["annotations"]["elfctl.dev/secret-id"] != ids
    assert rotated not in json.dumps(live)

    # `team rm` stops the team: its mcp Secret (it holds values) goes with the Deployment.
    env["ELFCTL_DEPLOY_TARGET"] = "kubernetes"
    assert json.loads(elf("team", "rm", team_name, "--yes", "--json").stdout)["stopped"] is True
    assert emulator.obj("v1/secrets", NS, f"{team_name}-mcp") is None


def test_rollout_without_the_document_writes_nothing(target, spec, emulator):
    """A caller that names servers but hands in no document is refused before the cluster is
    touched: the Deployment would otherwise wait on a file that never comes."""
    from dataclasses import replace

    from elfctl.errors import InputError

    with pytest.raises(InputError, match="mcp_servers: no mcpServers document"):
        target.rollout(replace(spec, mcp_servers=("search",)), "registry.test:5000/elfctl/mkt:v1", 1,
                       {}, {}, 30)
    assert emulator.k.writes == []


def test_mcp_file_beside_the_teams_secret_files_passes_the_schema(spec):
    """With secrets_as: files the team's Secret is the /run/secrets folder; the mcp file is mounted
    into it by subPath (two mounts, no clash), and the result passes the official schema."""
    from dataclasses import replace

    from elfctl.adapters.k8s_schema import validate
    from elfctl.domain import k8s_manifests as m

    team = replace(spec, secrets_as="files", mcp_servers=("search",))
    objects = m.team_objects(team, "elf-test", "registry.test:5000/elfctl/mkt:v1", 1)
    validate(objects, None)
    dep = objects[-1]
    mounts = {v["mountPath"]: v for v in dep["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert set(mounts) == {"/run/secrets", PATH} and all(v["readOnly"] for v in mounts.values())
    assert {v["name"]: v["secret"]["secretName"] for v in dep["spec"]["template"]["spec"]["volumes"]} == {
        "secrets": "mkt-secrets", "mcp": "mkt-mcp"}
