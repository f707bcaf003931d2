"""A team secret set with `elfctl creds set --stdin` (no environment variable) reaches the team's
container on the real Docker engine, and its value shows up nowhere elfctl records or prints."""

from __future__ import annotations

import json
import os
import uuid

from tests.conftest import run_elfctl
from tests.deploy.conftest import make_team

PASS = "wiring deploy passphrase"
NAME = "WIRING_TEAM_TOKEN"


def test_team_secret_from_the_store_reaches_the_container_only(project, store_url, docker_env, team_name, engine,
                                                                open_store):
    assert NAME not in os.environ
    env = {**docker_env, "ELFCTL_STORE_URL": store_url, "ELFCTL_MASTER_KEY": PASS, "ELFCTL_CREDS_BACKEND": "file"}
    canary = f"canary-{uuid.uuid4().hex}"
    outputs: list[str] = []

    def elf(*args, input=None, rc=0):
        proc = run_elfctl(*args, cwd=project, env=env, input=input, timeout=180)
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == rc, proc.stderr
        return proc

    folder = make_team(project, env, team_name)
    yaml_path = folder / "team.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("secrets: []", f"secrets: [{NAME}]"))

    # Not set anywhere: a clear error naming the file, the field and the fix; nothing deployed.
    missing = elf("deploy", team_name, rc=2)
    assert "team.yaml" in missing.stderr and "secrets" in missing.stderr and NAME in missing.stderr
    assert f"elfctl creds set {NAME} --team {team_name}" in missing.stderr
    assert "Traceback" not in missing.stderr

    elf("creds", "set", NAME, "--team", team_name, "--stdin", input=canary)
    deployed = json.loads(elf("deploy", team_name, "--json").stdout)
    assert deployed["state"] == "switched"

    # The container sees it (injected at start from memory)...
    prefix = docker_env["ELFCTL_DEPLOY_PREFIX"]
    apps = engine.containers({"elfctl.prefix": prefix, "elfctl.team": team_name, "elfctl.role": "app"}, all_=False)
    assert apps, "no app container"
    for c in apps:
        code, out = engine.exec(c["Id"], ["env"])
        assert code == 0 and f"{NAME}={canary}" in out.splitlines()
        # ...but not its labels, nor the image's labels, env or layers.
        info = engine.inspect(c["Id"])
        assert canary not in json.dumps(info["Config"]["Labels"])
        image = engine.api.inspect_image(info["Image"])
        assert canary not in json.dumps(image)
        assert canary not in json.dumps(engine.api.history(info["Image"]))

    # Unchanged while the credential is; a rotation alone rolls out the new value.
    assert json.loads(elf("deploy", team_name, "--json").stdout)["state"] == "unchanged"
    rotated = f"rotated-{uuid.uuid4().hex}"
    elf("creds", "rotate", NAME, "--team", team_name, "--stdin", input=rotated)
    again = json.loads(elf("deploy", team_name, "--json").stdout)
    assert again["state"] == "switched" and again["revision"] == deployed["revision"] + 1
    apps = engine.containers({"elfctl.prefix": prefix, "elfctl.team": team_name, "elfctl.role": "app"}, all_=False)
    serving = [c for c in apps if c["Labels"]["elfctl.revision"] == str(again["revision"])]
    assert serving and all(f"{NAME}={rotated}" in engine.exec(c["Id"], ["env"])[1].splitlines() for c in serving)

    # Nothing that records or lists a deployment holds the value.
    elf("deployments", team_name)
    elf("deployments", team_name, "--json")
    elf("logs", team_name, "--tail", "50")
    store = open_store(store_url)
    for table in store.tables():
        rows = repr(store.query(f"SELECT * FROM {table}"))
        assert canary not in rows and rotated not in rows, table
    for text in outputs:
        assert canary not in text and rotated not in text
    # The deploy's read is in the audit log (by name and version, never the value).
    runs = store.query("SELECT name, scope, version FROM credential_audit WHERE action = 'run'")
    assert {"name": NAME, "scope": team_name, "version": 1} in [dict(r) for r in runs]
    assert {"name": NAME, "scope": team_name, "version": 2} in [dict(r) for r in runs]
