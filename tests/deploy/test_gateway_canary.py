"""Provider keys never enter a team's containers: canary provider keys in the operator's environment
and in the credential store (globally and in the team's scope) appear in no replica's environment,
files or `docker inspect`, nor in the Kubernetes Pod spec `elfctl k8s render` prints. What the
team gets under OPENAI_API_KEY is its gateway key."""

from __future__ import annotations

import json
import uuid

import yaml

from tests.conftest import run_elfctl
from tests.deploy.conftest import make_team

PASS = "gateway canary passphrase"


def test_canary_provider_keys_reach_no_team_container(project, docker_env, team_name, engine):
    canaries = {name: f"canary-{name.lower()}-{uuid.uuid4().hex}"
                for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "STORE_GLOBAL", "STORE_TEAM")}
    env = {**docker_env, "ELFCTL_MASTER_KEY": PASS, "ELFCTL_CREDS_BACKEND": "file",
           "OPENAI_API_KEY": canaries["OPENAI_API_KEY"], "ANTHROPIC_API_KEY": canaries["ANTHROPIC_API_KEY"]}

    def elf(*args, input=None):
        proc = run_elfctl(*args, cwd=project, env=env, input=input, timeout=180)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    make_team(project, env, team_name, replicas=2)
    elf("creds", "set", "OPENAI_API_KEY", "--stdin", input=canaries["STORE_GLOBAL"])
    elf("creds", "set", "OPENAI_API_KEY", "--team", team_name, "--stdin", input=canaries["STORE_TEAM"])
    deployed = json.loads(elf("deploy", team_name, "--json").stdout)
    assert deployed["state"] == "switched"

    prefix = env["ELFCTL_DEPLOY_PREFIX"]
    apps = engine.containers({"elfctl.prefix": prefix, "elfctl.team": team_name, "elfctl.role": "app"}, all_=False)
    assert len(apps) == 2
    for c in apps:
        inspected = json.dumps(engine.inspect(c["Id"]))
        code, environ = engine.exec(c["Id"], ["env"])
        assert code == 0
        # Every file of the container's own filesystem (-xdev: not /proc, /sys, /dev); a control file
        # shows the search finds what is there.
        engine.exec(c["Id"], ["sh", "-c", "echo canary-control > /tmp/control"])
        code, hits = engine.exec(c["Id"], ["sh", "-c", "find / -xdev -type f -exec grep -l canary- {} + ; true"])
        assert "/tmp/control" in hits
        for value in canaries.values():
            assert value not in inspected and value not in environ and value not in hits, hits
        assert "OPENAI_API_KEY=elf_" in environ  # its own gateway key under the name clients read

    render = elf("k8s", "render", team_name)
    docs = list(yaml.safe_load_all(render.stdout))
    for value in canaries.values():
        assert value not in render.stdout and value not in render.stderr
    config_map, deployment = docs[0], docs[2]
    assert config_map["data"]["OPENAI_BASE_URL"].startswith("http://elfctl-gateway.")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    [key] = [e for e in container["env"] if e["name"] == "OPENAI_API_KEY"]
    assert "value" not in key and key["valueFrom"]["secretKeyRef"]["key"] == "OPENAI_API_KEY"
