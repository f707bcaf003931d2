"""A team secret set with `elfctl creds set --stdin` (no environment variable) reaches the team's
container on the real Docker engine, and its value shows up nowhere elfctl records or prints."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

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
    assert serving
    for c in serving:
        code, out = engine.exec(c["Id"], ["env"])
        assert code == 0 and f"{NAME}={rotated}" in out.splitlines(), (code, engine.inspect(c["Id"])["State"])

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


def test_secrets_as_files_reach_the_container_as_files_only(project, store_url, docker_env, team_name, engine,
                                                            tmp_path):
    """`secrets_as: files`: the value is a read-only file at /run/secrets/NAME backed by memory on the
    host; the container's environment (what `docker inspect` shows) holds only its path."""
    secrets_dir = Path("/dev/shm") / f"elfctl-test-{uuid.uuid4().hex[:8]}"
    env = {**docker_env, "ELFCTL_STORE_URL": store_url, "ELFCTL_MASTER_KEY": PASS, "ELFCTL_CREDS_BACKEND": "file",
           "ELFCTL_DEPLOY_SECRETS_DIR": str(secrets_dir)}
    canary, rotated = f"canary-{uuid.uuid4().hex}", f"rotated-{uuid.uuid4().hex}"
    prefix = docker_env["ELFCTL_DEPLOY_PREFIX"]

    def elf(*args, input=None, rc=0, extra=None):
        proc = run_elfctl(*args, cwd=project, env={**env, **(extra or {})}, input=input, timeout=180)
        assert proc.returncode == rc, proc.stderr
        assert canary not in proc.stdout + proc.stderr and rotated not in proc.stdout + proc.stderr
        return proc

    def apps():
        return engine.containers({"elfctl.prefix": prefix, "elfctl.team": team_name, "elfctl.role": "app"},
                                 all_=False)

    folder = make_team(project, env, team_name)
    yaml_path = folder / "team.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("secrets: []", f"secrets: [{NAME}]\nsecrets_as: files"))
    elf("creds", "set", NAME, "--team", team_name, "--stdin", input=canary)
    try:
        # A secrets folder on disk is refused before anything starts.
        refused = elf("deploy", team_name, rc=2, extra={"ELFCTL_DEPLOY_SECRETS_DIR": str(tmp_path / "s")})
        assert "deploy.secrets_dir" in refused.stderr and "tmpfs" in refused.stderr and not apps()

        first = json.loads(elf("deploy", team_name, "--json").stdout)
        assert first["state"] == "switched"
        (c,) = apps()
        assert engine.exec(c["Id"], ["cat", f"/run/secrets/{NAME}"]) == (0, canary)
        environment = engine.exec(c["Id"], ["env"])[1].splitlines()
        assert f"{NAME}_FILE=/run/secrets/{NAME}" in environment and canary not in "\n".join(environment)
        info = engine.inspect(c["Id"])
        assert canary not in json.dumps(info)
        (mount,) = [m for m in info["Mounts"] if m["Destination"] == f"/run/secrets/{NAME}"]
        assert not mount["RW"] and mount["Source"].startswith(str(secrets_dir))
        assert Path(mount["Source"]).read_text() == canary

        # A rotation rolls out a new container reading the new value.
        elf("creds", "rotate", NAME, "--team", team_name, "--stdin", input=rotated)
        again = json.loads(elf("deploy", team_name, "--json").stdout)
        assert again["state"] == "switched"
        serving = [a for a in apps() if a["Labels"]["elfctl.revision"] == str(again["revision"])]
        assert serving and engine.exec(serving[0]["Id"], ["cat", f"/run/secrets/{NAME}"]) == (0, rotated)

        # Once a team's containers are gone, so are their secret files.
        elf("infra", "down")
        assert not [p for p in secrets_dir.iterdir() if team_name in p.name]
    finally:
        shutil.rmtree(secrets_dir, ignore_errors=True)
