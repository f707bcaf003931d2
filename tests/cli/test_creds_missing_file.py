"""A credential file the store says existed and that is gone (issue 14, item 12): every command that
would read or write it stops with an error naming it (exit 1), nothing changes, and
`creds rekey --new` starts a new file on purpose, recorded in the audit trail, after which
`creds audit --verify` passes again. The real encrypted-file backend on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from tests.conftest import run_elfctl

PASS = "first passphrase"
NEW_PASS = "passphrase of the new file"


def elf(project, *args, rc=0, input=None, env=None):
    proc = run_elfctl(*args, cwd=project, input=input, env=env)
    assert proc.returncode == rc, f"elfctl {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc


@pytest.fixture
def proj(project, store_url, monkeypatch):
    monkeypatch.setenv("ELFCTL_STORE_URL", store_url)
    monkeypatch.setenv("ELFCTL_MASTER_KEY", PASS)
    monkeypatch.setenv("ELFCTL_CREDS_BACKEND", "file")
    elf(project, "db", "migrate")
    return project


def _store_rows(project) -> tuple:
    from elfctl import config
    from elfctl.bootstrap import open_store

    store = open_store(config.load(cwd=project))
    try:
        return (store.query("SELECT name, scope, version, backend FROM credentials ORDER BY name"),
                store.query("SELECT count(*) AS n FROM credential_audit")[0]["n"])
    finally:
        store.close()


def test_missing_file_is_an_error_until_a_new_one_is_started_on_purpose(proj):
    elf(proj, "creds", "set", "API_KEY", "--stdin", input="value-one")
    elf(proj, "creds", "set", "DB_PASS", "--team", "alpha", "--stdin", input="value-two")
    elf(proj, "creds", "audit", "--verify")
    path = proj / ".elf" / "credentials.enc"
    path.unlink()
    before = _store_rows(proj)

    for args in (["set", "NEW_KEY", "--stdin"], ["get", "API_KEY"], ["rotate", "API_KEY", "--generate"],
                 ["audit", "--verify"], ["run", "--team", "alpha"]):
        proc = elf(proj, "creds", *args, "--json", "--", "true", input="value-three", rc=1) if args[0] == "run" \
            else elf(proj, "creds", *args, "--json", input="value-three", rc=1)
        error = json.loads(proc.stdout)["error"]
        assert error["code"] == "credentials_missing", (args, error)
        assert f"{path}: the file credential backend is missing" in error["message"], error
        assert "2 credential(s) in it" in error["message"] and "audit trail of" in error["message"]
        assert "restore it from a backup" in error["hint"] and "creds rekey --new" in error["hint"]
        assert not path.exists(), args  # no silent new vault
    human = elf(proj, "creds", "set", "NEW_KEY", "--stdin", input="value-three", rc=1)
    assert f"error: {path}: the file credential backend is missing" in human.stderr
    assert _store_rows(proj) == before  # nothing changed, not even an audit entry

    # On purpose: a new file, the lost credentials dropped, all of it in the audit trail.
    proc = elf(proj, "creds", "rekey", "--new", "--from-env", "NEW_ONE", "--json", env={"NEW_ONE": NEW_PASS})
    out = json.loads(proc.stdout)
    assert out["file"] == str(path) and out["audit_key_changed"] is True, out
    assert sorted((c["name"], c["scope"]) for c in out["lost"]) == [("API_KEY", "global"), ("DB_PASS", "alpha")]
    assert path.exists()
    new_env = {"ELFCTL_MASTER_KEY": NEW_PASS}
    assert json.loads(elf(proj, "creds", "list", "--json", env=new_env).stdout) == []
    elf(proj, "creds", "set", "API_KEY", "--stdin", input="value-four", env=new_env)
    assert elf(proj, "creds", "get", "API_KEY", env=new_env).stdout == "value-four"

    verified = json.loads(elf(proj, "creds", "audit", "--verify", "--json", env=new_env).stdout)
    assert verified["problems"] == [] and verified["unverified"] == before[1], verified
    human = elf(proj, "creds", "audit", "--verify", env=new_env)
    assert f"the first {before[1]} were keyed by a lost credential file" in human.stdout
    entries = json.loads(elf(proj, "creds", "audit", "--json", env=new_env).stdout)
    actions = [(e["action"], e["name"], e["result"]) for e in entries[before[1]:before[1] + 4]]
    assert actions[0][0] == "new_audit_key" and str(path) in actions[0][2]
    assert actions[1][0] == "new_file"
    assert {(a, n, r) for a, n, r in actions[2:]} == {("delete", "API_KEY", "lost with the missing file"),
                                                       ("delete", "DB_PASS", "lost with the missing file")}

    # The new key still guards every entry from the new_audit_key one on.
    from elfctl import config
    from elfctl.bootstrap import open_store

    store = open_store(config.load(cwd=proj))
    seq = entries[before[1] + 1]["seq"]
    store.execute("UPDATE credential_audit SET result = 'edited' WHERE seq = ?", (seq,))
    store.close()
    proc = elf(proj, "creds", "audit", "--verify", env=new_env, rc=1)
    assert f"entry {seq}" in proc.stdout and "edited" in proc.stdout

    # --new never replaces a file that is there.
    proc = elf(proj, "creds", "rekey", "--new", "--from-env", "NEW_ONE", env={"NEW_ONE": "x", **new_env}, rc=2)
    assert f"{path}: the credential file exists" in proc.stderr and "without --new" in proc.stderr


def test_first_credential_still_creates_the_file(proj):
    """Nothing recorded yet: a missing file is simply a new project's, made on first use."""
    path = proj / ".elf" / "credentials.enc"
    assert not path.exists()
    elf(proj, "creds", "set", "FIRST", "--stdin", input="v")
    assert path.exists()
    elf(proj, "creds", "audit", "--verify")
