"""Kubernetes Secrets from the credential store: `infra up` writes the team's Secret with the value
`elfctl creds set --stdin` stored (the store wins over an environment variable of the same name),
and `deploy --render`, `--dry-run` and every output name it only."""

from __future__ import annotations

import uuid

import yaml

from tests.k8s.conftest import closed_registry

PASS = "wiring k8s passphrase"


def test_team_secret_comes_from_the_store_and_is_never_printed(k8s_project, emulator, elfctl, monkeypatch,
                                                                 open_store):
    monkeypatch.delenv("MKT_API_KEY")
    monkeypatch.setenv("ELFCTL_MASTER_KEY", PASS)
    monkeypatch.setenv("ELFCTL_CREDS_BACKEND", "file")
    canary = f"canary-{uuid.uuid4().hex}"
    outputs: list[str] = []

    def elf(*args, input=None, env=None, rc=0):
        proc = elfctl(*args, cwd=k8s_project, input=input, env=env)
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == rc, proc.stderr
        return proc

    elf("db", "migrate")
    missing = elf("infra", "up", "--only", "target", rc=2)
    assert "MKT_API_KEY" in missing.stderr and "creds set MKT_API_KEY --team mkt" in missing.stderr
    elf("creds", "set", "MKT_API_KEY", "--team", "mkt", "--stdin", input=canary)

    render = elf("deploy", "mkt", "--render")
    docs = list(yaml.safe_load_all(render.stdout))
    env = docs[2]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0] == {"name": "MKT_API_KEY", "valueFrom": {"secretKeyRef": {"name": "mkt-secrets", "key": "MKT_API_KEY"}}}
    assert [e["name"] for e in env] == ["MKT_API_KEY", "OPENAI_API_KEY"]  # the LLM gateway's key, by reference
    elf("infra", "up", "--only", "target", "--dry-run")

    # The store wins over an environment variable of the same name. The step succeeds; the health
    # table that ends `infra up` fails on the registry (closed_registry), so the exit code is 1.
    closed = closed_registry()
    up = elf("--debug", "infra", "up", "--only", "target", rc=1, env={"MKT_API_KEY": "from-the-environment", **closed})
    assert "Secret mkt-secrets written" in up.stdout
    assert "elfctl health: fail" in up.stdout
    assert f"registry http://{closed['ELFCTL_REGISTRY_URL']} not reachable" in up.stdout
    secret = emulator.obj("v1/secrets", "elf-test", "mkt-secrets")
    assert secret["stringData"] == {"MKT_API_KEY": canary}  # the value reached the cluster, only there

    for text in outputs:
        assert canary not in text
    store = open_store(f"sqlite:///{k8s_project / '.elf' / 'elf.db'}")
    for table in store.tables():
        assert canary not in repr(store.query(f"SELECT * FROM {table}")), table
