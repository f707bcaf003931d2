"""`elfctl deploy` hands each revision of a team its own LLM gateway key, on the real Docker engine:
OPENAI_BASE_URL (the gateway by its name on the platform network) and OPENAI_API_KEY in every
replica; the previous revision's key revoked once it was replaced, a key of a revision that never
served revoked at once, none minted by an unchanged re-deploy, all revoked by `team rm`. The key is
shown by nothing elfctl prints or records (the history keeps its prefix)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import run_elfctl
from tests.deploy.conftest import make_team, set_version


def _keys(project, env) -> dict[int, dict]:
    """`gateway key list --json`, the team's revision keys by revision (what an operator sees)."""
    proc = run_elfctl("gateway", "key", "list", "--json", cwd=project, env=env)
    assert proc.returncode == 0, proc.stderr
    return {k["revision"]: k for k in json.loads(proc.stdout) if k["revision"] is not None}


def _replica_env(engine, prefix: str, team: str, revision: int) -> list[dict[str, str]]:
    """The environment each running replica of `revision` was started with (docker inspect)."""
    apps = engine.containers({"elfctl.prefix": prefix, "elfctl.team": team, "elfctl.role": "app",
                              "elfctl.revision": str(revision)}, all_=False)
    assert apps, f"no running replica of revision {revision}"
    return [dict(e.split("=", 1) for e in engine.inspect(c["Id"])["Config"]["Env"]) for c in apps]


def _authenticate(project, raw: str):
    """The gateway's own lookup of a key (services/gateway/keys.py), on the project's store."""
    from elfctl import config
    from elfctl.bootstrap import open_store
    from elfctl.services.gateway.keys import Authenticator

    store = open_store(config.load(cwd=project))
    try:
        return Authenticator(store, ttl_s=0).lookup(raw)
    finally:
        store.close()


def test_each_revision_gets_a_key_revoked_once_replaced(project, docker_env, team_name, engine):
    env = dict(docker_env)
    prefix = env["ELFCTL_DEPLOY_PREFIX"]
    outputs: list[str] = []

    def elf(*args, rc=0):
        proc = run_elfctl(*args, cwd=project, env=env, timeout=180)
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == rc, proc.stdout + proc.stderr
        return json.loads(proc.stdout) if "--json" in args else proc

    folder = make_team(project, env, team_name, replicas=2)
    first = elf("deploy", team_name, "--json")
    assert first["state"] == "switched" and first["revision"] == 1
    envs = _replica_env(engine, prefix, team_name, 1)
    assert len(envs) == 2
    assert {e["OPENAI_BASE_URL"] for e in envs} == {"http://elfctl-gateway:18400/v1"}
    key1 = envs[0]["OPENAI_API_KEY"]
    assert {e["OPENAI_API_KEY"] for e in envs} == {key1} and key1.startswith("elf_")
    found = _authenticate(project, key1)
    assert found is not None and (found.team, found.revision) == (team_name, 1)
    keys = _keys(project, env)
    assert list(keys) == [1] and keys[1]["revoked_at"] is None and key1.split("_")[1] == keys[1]["prefix"]

    # Unchanged: nothing rolled out, nothing minted.
    assert elf("deploy", team_name, "--json")["state"] == "unchanged"
    assert list(_keys(project, env)) == [1]

    # A new revision: its own key; the replaced revision's key is revoked after the switch.
    set_version(folder, "v2")
    second = elf("deploy", team_name, "--json")
    assert second["state"] == "switched" and second["revision"] == 2
    key2 = _replica_env(engine, prefix, team_name, 2)[0]["OPENAI_API_KEY"]
    assert key2 != key1 and _authenticate(project, key2).revision == 2
    assert _authenticate(project, key1) is None
    keys = _keys(project, env)
    assert keys[1]["revoked_at"] is not None and keys[2]["revoked_at"] is None

    # A version refused by its health gate: the key minted for it is revoked, revision 2 keeps serving
    # with its key valid.
    set_version(folder, "v3", '{"status": "fail"}')
    third = elf("deploy", team_name, "--json", rc=1)
    assert third["state"] == "rolled_back" and third["revision"] == 3
    keys = _keys(project, env)
    assert keys[3]["revoked_at"] is not None and keys[2]["revoked_at"] is None
    assert _authenticate(project, key2).revision == 2

    # A rollback is a new revision: a new key, and revision 2's goes once it is replaced.
    back = elf("rollback", team_name, "--to", "1", "--json")
    assert back["state"] == "switched" and back["revision"] == 4
    key4 = _replica_env(engine, prefix, team_name, 4)[0]["OPENAI_API_KEY"]
    assert _authenticate(project, key4).revision == 4 and _authenticate(project, key2) is None

    # The history names each key by its prefix; no output and no row of the store holds a key.
    history = elf("deployments", team_name, "--json")
    by_rev = {r["revision"]: r for r in history}
    assert by_rev[4]["details"]["gateway"] == {"url": "http://elfctl-gateway:18400/v1",
                                               "key_prefix": key4.split("_")[1]}
    elf("deployments", team_name)
    elf("gateway", "key", "list")
    from elfctl import config
    from elfctl.bootstrap import open_store

    store = open_store(config.load(cwd=project))
    rows = "".join(repr(store.query(f"SELECT * FROM {t}")) for t in store.tables())
    store.close()
    for raw in (key1, key2, key4):
        assert raw.split("_")[2] not in rows
        assert not any(raw.split("_")[2] in out for out in outputs)

    # team rm: every key of the team is revoked (said by prefix), nothing of it may call the gateway.
    removed = elf("team", "rm", team_name, "--yes", "--json")
    assert key4.split("_")[1] in removed["revoked_keys"]
    assert all(k["revoked_at"] is not None for k in _keys(project, env).values())
    assert _authenticate(project, key4) is None


def test_opted_out_team_gets_nothing_and_a_bad_url_is_refused(project, docker_env, team_name, engine):
    env = dict(docker_env)
    prefix = env["ELFCTL_DEPLOY_PREFIX"]
    folder = make_team(project, env, team_name)
    yaml_path = folder / "team.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("  gateway: true", "  gateway: false"))

    proc = run_elfctl("deploy", team_name, "--json", cwd=project, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    [seen] = _replica_env(engine, prefix, team_name, 1)
    assert "OPENAI_BASE_URL" not in seen and "OPENAI_API_KEY" not in seen
    assert _keys(project, env) == {}

    # Moving the gateway is a config change: the team (opted in again) rolls out with the new URL.
    yaml_path.write_text(yaml_path.read_text().replace("  gateway: false", "  gateway: true"))
    bad = {**env, "ELFCTL_GATEWAY_URL_IN_TEAMS": "gateway:18400"}
    refused = run_elfctl("deploy", team_name, "--json", cwd=project, env=bad, timeout=60)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    err = json.loads(refused.stdout)["error"]
    assert "gateway.url_in_teams 'gateway:18400'" in err["message"] and "http://" in err["hint"]
    assert _keys(project, env) == {}

    moved = {**env, "ELFCTL_GATEWAY_URL_IN_TEAMS": "http://llm.internal:9000/v1"}
    proc = run_elfctl("deploy", team_name, "--json", cwd=project, env=moved, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["revision"] == 2  # the refused deploy recorded nothing
    [seen] = _replica_env(engine, prefix, team_name, 2)
    assert seen["OPENAI_BASE_URL"] == "http://llm.internal:9000/v1"
    assert _authenticate(project, seen["OPENAI_API_KEY"]).revision == 2


def test_a_killed_deploys_key_is_revoked_by_the_next_deploy(project, docker_env, team_name):
    env = {**docker_env, "ELFCTL_DEPLOY_LOCK_TTL_S": "3"}
    folder = make_team(project, env, team_name)
    assert run_elfctl("deploy", team_name, cwd=project, env=env, timeout=180).returncode == 0
    # Revision 2 never passes its gate: kill -9 the deploy once it has minted its key.
    set_version(folder, "v2", '{"status": "fail"}')
    proc = subprocess.Popen([sys.executable, "-m", "elfctl", "deploy", team_name], cwd=project,
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while 2 not in _keys(project, env):
            assert proc.poll() is None and time.monotonic() < deadline, "the deploy ended before minting"
            time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _keys(project, env)[2]["revoked_at"] is None  # left valid by the killed deploy

    set_version(folder, "v3")
    again = run_elfctl("deploy", team_name, "--lock-wait", "30", "--json", cwd=project, env=env, timeout=180)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["revision"] == 3
    keys = _keys(project, env)
    assert keys[2]["revoked_at"] is not None and keys[1]["revoked_at"] is not None
    assert keys[3]["revoked_at"] is None


def test_secrets_as_files_team_gets_its_key_in_the_environment(project, docker_env, team_name, engine):
    """`secrets_as: files` moves the team's own secrets into files; the gateway key stays in the
    environment, where OpenAI clients read it (and it is not written as a file)."""
    import shutil
    import uuid
    from pathlib import Path

    secrets_dir = Path("/dev/shm") / f"elfctl-test-{uuid.uuid4().hex[:8]}"
    env = {**docker_env, "ELFCTL_DEPLOY_SECRETS_DIR": str(secrets_dir), "GW_FILES_TOKEN": "files-token-value"}
    prefix = env["ELFCTL_DEPLOY_PREFIX"]
    folder = make_team(project, env, team_name)
    yaml_path = folder / "team.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("secrets: []", "secrets: [GW_FILES_TOKEN]\nsecrets_as: files"))
    try:
        proc = run_elfctl("deploy", team_name, "--json", cwd=project, env=env, timeout=180)
        assert proc.returncode == 0, proc.stderr
        [seen] = _replica_env(engine, prefix, team_name, 1)
        assert seen["GW_FILES_TOKEN_FILE"] == "/run/secrets/GW_FILES_TOKEN" and "GW_FILES_TOKEN" not in seen
        assert _authenticate(project, seen["OPENAI_API_KEY"]).revision == 1
        [app] = engine.containers({"elfctl.prefix": prefix, "elfctl.team": team_name, "elfctl.role": "app"},
                                  all_=False)
        code, listing = engine.exec(app["Id"], ["ls", "/run/secrets"])
        assert code == 0 and listing.split() == ["GW_FILES_TOKEN"]
    finally:
        run_elfctl("team", "rm", team_name, "--yes", cwd=project, env=env, timeout=120)
        shutil.rmtree(secrets_dir, ignore_errors=True)
