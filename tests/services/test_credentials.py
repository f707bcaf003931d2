"""The credentials service on both store dialects: versions, grace, teams, resolve, check, import,
audit chain and its tampering, and a canary that never reaches a store row."""

import datetime as dt
import subprocess
import sys

import pytest

from elfctl.domain.secret import Secret
from elfctl.errors import InputError
from elfctl.services.credentials import audit as credential_audit
from elfctl.services.credentials import checks as credential_checks
from elfctl.services.credentials import run as credential_run
from elfctl.services.credentials import vault as svc
from elfctl.services.credentials.app import vault_for
from elfctl.services.platform import migrate

CANARY = "canary-svc-5b1d77e2c0"


@pytest.fixture
def vault(store_url, open_store, project, monkeypatch):
    monkeypatch.setenv("ELFCTL_MASTER_KEY", "service test pass")
    monkeypatch.setenv("ELFCTL_CREDS_BACKEND", "file")
    monkeypatch.setenv("ELFCTL_STORE_URL", store_url)
    from elfctl.app import App
    from elfctl.output import Output

    app = App(Output())
    migrate.migrate(app.store, app.migrations_dir)
    yield vault_for(app, command="pytest")
    app.close()


def dump_store(store) -> str:
    out = []
    for table in store.tables():
        out.append(repr(store.query(f'SELECT * FROM "{table}"')))
    return "\n".join(out)


def test_versions_previous_grace_and_remove(vault):
    info = svc.set_value(vault, "API_KEY", Secret(CANARY), expires="90d")
    assert (info.version, info.backend, info.scope) == (1, "file", "")
    assert info.expires_at is not None
    info = svc.set_value(vault, "API_KEY", Secret("second-value"))
    assert info.version == 2 and info.rotated_at and info.previous_valid_until
    assert info.expires_at is not None  # kept when not given again
    _, value = svc.get(vault, "API_KEY")
    assert value.reveal() == "second-value"
    _, prev = svc.get(vault, "API_KEY", previous=True)
    assert prev.reveal() == CANARY
    info = svc.rotate(vault, "API_KEY", generate_length=40)
    _, gen = svc.get(vault, "API_KEY")
    assert len(gen.reveal()) == 40 and gen.reveal() not in (CANARY, "second-value")
    assert vault.backend("file").get_many(["_/API_KEY@1"]) == {
        "_/API_KEY@1": None
    }  # older than previous: gone
    vault.store.execute(
        "UPDATE credentials SET previous_valid_until = ? WHERE name = ?",
        ("2000-01-01T00:00:00+00:00", "API_KEY"),
    )
    with pytest.raises(InputError, match="grace period"):
        svc.get(vault, "API_KEY", previous=True)
    [row] = svc.list_(vault)
    assert row.name == "API_KEY" and row.version == 3 and row.last_used_at
    svc.remove(vault, "API_KEY")
    assert svc.list_(vault) == []
    assert vault.backend("file").keys() == []
    with pytest.raises(InputError, match="no credential API_KEY"):
        svc.get(vault, "API_KEY")
    with pytest.raises(InputError, match="not a valid credential name"):
        svc.set_value(vault, "api-key", Secret("x-value"))
    with pytest.raises(InputError, match="not a valid team name"):
        svc.set_value(vault, "OK", Secret("x-value"), team="Bad_Team")


def test_teams_resolve_and_run_env(vault, project):
    svc.set_value(vault, "SHARED", Secret("global-shared"))
    svc.set_value(vault, "OTHER_GLOBAL", Secret("not-for-team"))
    svc.set_value(vault, "SHARED", Secret("team-shared"), team="alpha")
    svc.set_value(vault, "TEAM_ONLY", Secret("alpha-only"), team="alpha")
    got = svc.resolve(vault, ["SHARED", "TEAM_ONLY"], team="alpha")
    assert {k: v.reveal() for k, v in got.items()} == {"SHARED": "team-shared", "TEAM_ONLY": "alpha-only"}
    assert all(isinstance(v, Secret) for v in got.values())
    assert svc.resolve(vault, ["SHARED"])["SHARED"].reveal() == "global-shared"
    assert svc.resolve(vault, ["MISSING"], required=False) == {}
    with pytest.raises(InputError, match="MISSING"):
        svc.resolve(vault, ["MISSING", "SHARED"])
    # run: globals only when the team's team.yaml allows them
    (project / "teams" / "alpha").mkdir(parents=True)
    (project / "teams" / "alpha" / "team.yaml").write_text("name: alpha\nsecrets: [OTHER_GLOBAL]\n")
    env = {k: v.reveal() for k, v in credential_run.run_env(vault, "alpha").items()}
    assert env == {"SHARED": "team-shared", "TEAM_ONLY": "alpha-only", "OTHER_GLOBAL": "not-for-team"}
    assert set(credential_run.run_env(vault, None)) == {"SHARED", "OTHER_GLOBAL"}


def test_check_and_health(vault):
    svc.set_value(vault, "FRESH", Secret("fresh-value"))
    assert credential_checks.health_check(vault).status == "pass"
    svc.set_value(vault, "SOON", Secret("soon-value"), expires="3d")
    c = credential_checks.health_check(vault)
    assert c.status == "warn" and "SOON" in c.output
    svc.set_value(vault, "GONE", Secret("gone-value"))
    vault.store.execute(
        "UPDATE credentials SET expires_at = ? WHERE name = ?", ("2026-01-02T03:04:05+00:00", "GONE")
    )
    result = credential_checks.check(vault)
    assert result.failed and [(f.name, f.since) for f in result.findings if f.status == "fail"] == [
        ("GONE", "2026-01-02T03:04:05+00:00")
    ]
    assert credential_checks.health_check(vault).status == "fail"
    vault.max_age = dt.timedelta(seconds=0)
    assert {f.name for f in credential_checks.check(vault).findings if f.status == "fail"} == {
        "FRESH",
        "SOON",
        "GONE",
    }


def test_import_env_validates_whole_file_first(vault, tmp_path):
    good = tmp_path / "app.env"
    good.write_text(f"# app\nexport DB_PASSWORD='{CANARY}'\nTOKEN=abc123def\n")
    result = svc.import_env(vault, good, team="alpha")
    assert [c.name for c in result.imported] == ["DB_PASSWORD", "TOKEN"]
    bad = tmp_path / "bad.env"
    bad.write_text("NEW_ONE=fine-value\nthis line has no equals sign\n")
    with pytest.raises(InputError, match=r"bad.env:2: not a KEY=VALUE"):
        svc.import_env(vault, bad)
    assert "NEW_ONE" not in {c.name for c in svc.list_(vault)}  # nothing stored from a bad file


def test_audit_records_every_action_and_verify_finds_tampering(vault):
    svc.set_value(vault, "A_KEY", Secret(CANARY))
    svc.get(vault, "A_KEY")
    svc.rotate(vault, "A_KEY", generate_length=20)
    svc.resolve(vault, ["A_KEY"], action="run")
    svc.remove(vault, "A_KEY")
    entries = credential_audit.audit_entries(vault)
    assert [(e["action"], e["name"], e["version"]) for e in entries] == [
        ("set", "A_KEY", 1),
        ("read", "A_KEY", 1),
        ("rotate", "A_KEY", 2),
        ("run", "A_KEY", 2),
        ("delete", "A_KEY", 2),
    ]
    assert all(e["os_user"] and e["host"] and e["command"] == "pytest" for e in entries)
    with pytest.raises(InputError):
        svc.get(vault, "A_KEY")  # deleted: the refused read is audited too
    last = credential_audit.audit_entries(vault)[-1]
    assert (last["action"], last["name"], last["result"]) == ("read", "A_KEY", "refused: not_found")
    entries = credential_audit.audit_entries(vault)
    assert credential_audit.audit_verify(vault).ok
    assert CANARY not in dump_store(vault.store)
    seqs = [e["seq"] for e in entries]
    st = vault.store

    st.execute("UPDATE credential_audit SET os_user = 'mallory' WHERE seq = ?", (seqs[1],))
    problems = credential_audit.audit_verify(vault).problems
    assert [(p.seq, p.kind) for p in problems] == [(seqs[1], "edited")]
    st.execute("UPDATE credential_audit SET os_user = ? WHERE seq = ?", (entries[1]["os_user"], seqs[1]))
    assert credential_audit.audit_verify(vault).ok

    st.execute("DELETE FROM credential_audit WHERE seq = ?", (seqs[2],))
    [p] = credential_audit.audit_verify(vault).problems
    assert p.kind == "removed" and f"between {seqs[1]} and {seqs[3]}" in p.detail


def test_audit_reordering_is_found(vault):
    for i in range(4):
        svc.set_value(vault, f"K{i}", Secret(f"value-number-{i}"))
    rows = vault.store.query("SELECT * FROM credential_audit ORDER BY seq")
    a, b = rows[1], rows[2]
    cols = [
        "ts",
        "os_user",
        "host",
        "command",
        "action",
        "name",
        "scope",
        "version",
        "result",
        "mac",
        "prev_mac",
    ]
    with vault.store.transaction() as tx:
        for src, dst in ((b, a["seq"]), (a, b["seq"])):
            tx.execute(
                f"UPDATE credential_audit SET {', '.join(c + ' = ?' for c in cols)} WHERE seq = ?",
                (*(src[c] for c in cols), dst),
            )
    kinds = {p.kind for p in credential_audit.audit_verify(vault).problems}
    assert kinds == {"reordered"}


CONCURRENT = """
import os, sys
from elfctl.app import App
from elfctl.output import Output
from elfctl.domain.secret import Secret
from elfctl.services.credentials import audit as credential_audit
from elfctl.services.credentials import checks as credential_checks
from elfctl.services.credentials import run as credential_run
from elfctl.services.credentials import vault as svc
from elfctl.services.credentials.app import vault_for
app = App(Output())
v = vault_for(app, command="writer")
for i in range(int(sys.argv[2])):
    svc.set_value(v, sys.argv[1], Secret(f"value-{sys.argv[1]}-{i}"))
    svc.set_value(v, "SHARED_NAME", Secret(f"shared-{sys.argv[1]}-{i}"))
"""


def test_two_processes_setting_at_once_lose_nothing(vault, project):
    procs = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT, name, "6"], cwd=project)
        for name in ("ONE", "TWO")
    ]
    assert [p.wait(timeout=180) for p in procs] == [0, 0]
    rows = {r.name: r.version for r in svc.list_(vault)}
    assert rows == {"ONE": 6, "TWO": 6, "SHARED_NAME": 12}
    assert svc.get(vault, "ONE")[1].reveal() == "value-ONE-5"
    assert credential_audit.audit_verify(vault).ok and len(credential_audit.audit_entries(vault)) == 24 + 1
