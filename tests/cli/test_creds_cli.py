"""`elfctl creds` as a user runs it (subprocesses), with a canary value that must never appear in
anything the tool writes: stdout/stderr of every command, --json, errors, --debug logs, files
under .elf/, and every row of every store table (SQLite and PostgreSQL)."""

import json
import os
import pty
import subprocess
import sys
import uuid

import pytest
from tests.conftest import run_elfctl

CANARY = f"canary-{uuid.uuid4().hex}"
PASS = "cli test passphrase"
SEEN: list[str] = []  # every stdout/stderr of the module, checked once more at the end


def elf(project, *args, input=None, env=None, rc=0, value_ok=False):
    proc = run_elfctl(*args, cwd=project, input=input, env=env)
    assert proc.returncode == rc, f"elfctl {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert CANARY not in proc.stderr, f"canary in stderr of {args}"
    if not value_ok:
        assert CANARY not in proc.stdout, f"canary in stdout of {args}"
        SEEN.append(proc.stdout)
    SEEN.append(proc.stderr)
    return proc


@pytest.fixture
def proj(project, store_url, monkeypatch):
    monkeypatch.setenv("ELFCTL_STORE_URL", store_url)
    monkeypatch.setenv("ELFCTL_MASTER_KEY", PASS)
    monkeypatch.setenv("ELFCTL_CREDS_BACKEND", "file")
    elf(project, "db", "migrate")
    return project


def dump_everything(project) -> str:
    from elfctl import config
    from elfctl.bootstrap import open_store

    store = open_store(config.load(cwd=project))
    try:
        rows = [repr(store.query(f'SELECT * FROM "{t}"')) for t in store.tables()]
    finally:
        store.close()
    files = [p.read_bytes().decode("latin-1") for p in (project / ".elf").iterdir() if p.is_file()]
    return "\n".join(rows + files)


def test_canary_never_leaks(proj):
    elf(proj, "creds", "set", "CANARY_KEY", "--stdin", "--expires", "30d", input=CANARY + "\n")
    listed = json.loads(elf(proj, "creds", "list", "--json").stdout)
    assert [(c["name"], c["scope"], c["version"], c["backend"]) for c in listed] == [("CANARY_KEY", "global", 1, "file")]
    elf(proj, "creds", "list")
    elf(proj, "--debug", "creds", "list")
    assert elf(proj, "creds", "get", "CANARY_KEY", value_ok=True).stdout == CANARY  # a pipe: exact bytes
    got = json.loads(elf(proj, "creds", "get", "CANARY_KEY", "--json", value_ok=True).stdout)
    assert got == {"name": "CANARY_KEY", "scope": "global", "version": 1, "value": CANARY}
    # run: the child sees the value; its exit code comes back unchanged
    elf(proj, "creds", "run", "--", "sh", "-c", f'test "$CANARY_KEY" = "{CANARY}"')
    elf(proj, "creds", "run", "--", "sh", "-c", "exit 7", rc=7)
    elf(proj, "creds", "run", "--", "no-such-command-here", rc=2)
    # errors and other commands
    elf(proj, "creds", "set", "CANARY_KEY", CANARY, rc=2)  # value on argv: refused, not echoed
    elf(proj, "--json", "creds", "set", "CANARY_KEY", CANARY, rc=2)
    elf(proj, "creds", "set", "bad-name", "--stdin", input=CANARY, rc=2)
    elf(proj, "creds", "get", "MISSING", "--json", rc=2)
    elf(proj, "creds", "rotate", "CANARY_KEY", "--stdin", input="second-value-123")
    assert elf(proj, "creds", "get", "CANARY_KEY", "--previous", value_ok=True).stdout == CANARY
    elf(proj, "creds", "check", "--json")
    elf(proj, "creds", "audit", "--json")
    elf(proj, "creds", "audit")
    elf(proj, "creds", "audit", "--verify", "--json")
    elf(proj, "health", "--json")
    elf(proj, "--debug", "health")
    elf(proj, "config", "show", "--json")
    dump = dump_everything(proj)
    assert "CANARY_KEY" in dump  # the dump really covers the credential rows
    assert CANARY not in dump
    assert all(CANARY not in text for text in SEEN)


def test_get_refuses_a_terminal_unless_reveal(proj):
    elf(proj, "creds", "set", "TTY_KEY", "--stdin", input=CANARY)
    for extra, want_rc in (([], 2), (["--reveal"], 0)):
        main, child = pty.openpty()
        proc = subprocess.run(
            [sys.executable, "-m", "elfctl", "creds", "get", "TTY_KEY", *extra],
            cwd=proj,
            stdout=child,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
        os.close(child)
        shown = os.read(main, 65536).decode() if want_rc == 0 else ""
        os.close(main)
        assert proc.returncode == want_rc, proc.stderr
        if want_rc == 2:
            assert "refusing to print a credential to a terminal" in proc.stderr
        else:
            assert CANARY in shown
    audit = json.loads(elf(proj, "creds", "audit", "--json").stdout)
    assert [a["action"] for a in audit] == ["set", "read"]  # the refused get read nothing


def test_wrong_passphrase_exit_2_changes_nothing(proj):
    elf(proj, "creds", "set", "PW_KEY", "--from-env", "THE_VALUE", env={"THE_VALUE": CANARY})
    before = dump_everything(proj)
    for args in (["get", "PW_KEY"], ["set", "OTHER", "--stdin"], ["rotate", "PW_KEY", "--generate"],
                 ["run", "--", "true"]):  # run/get start the key derivation early: same answer
        proc = elf(proj, "creds", *args, input="x-value-1", env={"ELFCTL_MASTER_KEY": "not the passphrase"}, rc=2)
        assert "wrong passphrase" in proc.stderr
    assert dump_everything(proj) == before


def test_damaged_file_is_a_clear_error_for_run(proj):
    elf(proj, "creds", "set", "DMG_KEY", "--from-env", "THE_VALUE", env={"THE_VALUE": CANARY})
    path = proj / ".elf" / "credentials.enc"
    path.write_bytes(path.read_bytes()[:-7])
    proc = elf(proj, "creds", "run", "--", "true", rc=1)
    assert "damaged" in proc.stderr and "Traceback" not in proc.stderr


def test_rekey_then_only_the_new_passphrase_works(proj):
    elf(proj, "creds", "set", "RK", "--stdin", input=CANARY)
    elf(proj, "creds", "rekey", "--stdin", input="the new passphrase")
    elf(proj, "creds", "get", "RK", rc=2)
    assert elf(proj, "creds", "get", "RK", env={"ELFCTL_MASTER_KEY": "the new passphrase"}, value_ok=True).stdout == CANARY
    elf(proj, "creds", "audit", "--verify", env={"ELFCTL_MASTER_KEY": "the new passphrase"})


def test_no_value_source_and_bad_env_file(proj):
    proc = elf(proj, "creds", "set", "NOVALUE", rc=2)
    assert "--stdin" in proc.stderr
    (proj / "bad.env").write_text(f"GOOD=1\nCANARY_LINE {CANARY}\n")
    proc = elf(proj, "creds", "import", "bad.env", rc=2)
    assert "bad.env:2:" in proc.stderr
    (proj / "good.env").write_text(f"A_ONE={CANARY}\nB_TWO=two-value\n")
    proc = elf(proj, "creds", "import", "good.env", "--team", "alpha")
    assert "can now be deleted" in proc.stdout
    listed = json.loads(elf(proj, "creds", "list", "--team", "alpha", "--json").stdout)
    assert {c["name"] for c in listed} == {"A_ONE", "B_TWO"}


def test_check_exit_1_and_audit_verify_finds_tampering(proj):
    elf(proj, "creds", "set", "OLD_KEY", "--stdin", input=CANARY)
    elf(proj, "creds", "check")
    from elfctl import config
    from elfctl.bootstrap import open_store

    store = open_store(config.load(cwd=proj))
    store.execute("UPDATE credentials SET expires_at = ?", ("2026-01-01T00:00:00+00:00",))
    proc = elf(proj, "creds", "check", rc=1)
    assert "OLD_KEY" in proc.stdout and "expired since 2026-01-01" in proc.stdout
    health = json.loads(elf(proj, "health", "--json", rc=1).stdout)
    assert health["checks"]["creds"][0]["status"] == "fail"
    elf(proj, "creds", "get", "OLD_KEY", value_ok=True)
    seq = store.query("SELECT max(seq) AS s FROM credential_audit")[0]["s"]
    store.execute("UPDATE credential_audit SET result = 'denied' WHERE seq = ?", (seq,))
    store.close()
    proc = elf(proj, "creds", "audit", "--verify", rc=1)
    assert f"entry {seq}" in proc.stdout and "edited" in proc.stdout


def test_keyring_absent_auto_falls_back_to_the_file(project, tmp_path):
    env = {"DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus", "ELFCTL_MASTER_KEY": PASS}
    elf(project, "db", "migrate")
    elf(project, "creds", "set", "FALLBACK", "--stdin", input=CANARY, env=env)
    listed = json.loads(elf(project, "creds", "list", "--json", env=env).stdout)
    assert listed[0]["backend"] == "file" and (project / ".elf" / "credentials.enc").exists()
    assert elf(project, "creds", "get", "FALLBACK", env=env, value_ok=True).stdout == CANARY


def test_real_os_keyring_through_the_cli(project, os_keyring):
    env = {"DBUS_SESSION_BUS_ADDRESS": os_keyring}  # no ELFCTL_MASTER_KEY: the keyring needs none
    elf(project, "db", "migrate")
    elf(project, "creds", "set", "KR_KEY", "--stdin", "--team", "alpha", input=CANARY, env=env)
    listed = json.loads(elf(project, "creds", "list", "--json", env=env).stdout)
    assert listed[0]["backend"] == "keyring" and listed[0]["scope"] == "alpha"
    assert elf(project, "creds", "get", "KR_KEY", "--team", "alpha", env=env, value_ok=True).stdout == CANARY
    elf(project, "creds", "rotate", "KR_KEY", "--team", "alpha", "--generate", env=env)
    assert elf(project, "creds", "get", "KR_KEY", "--team", "alpha", "--previous", env=env, value_ok=True).stdout == CANARY
    elf(project, "creds", "run", "--team", "alpha", "--", "sh", "-c", 'test -n "$KR_KEY"', env=env)
    elf(project, "creds", "rm", "KR_KEY", "--team", "alpha", env=env)
    elf(project, "creds", "audit", "--verify", env=env)
    assert not (project / ".elf" / "credentials.enc").exists()
    assert CANARY not in dump_everything(project)


def _in_terminal(project, args, typed: list[str], timeout=60) -> tuple[int, str]:
    """Run elfctl with a real terminal as its controlling tty (so getpass turns echo off) and type."""
    import fcntl
    import termios
    import time

    main, child = pty.openpty()

    def ctty():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [sys.executable, "-m", "elfctl", *args], cwd=project, stdin=child, stdout=child, stderr=child, preexec_fn=ctty
    )
    os.close(child)
    shown = b""
    for line in typed:
        deadline = time.monotonic() + timeout
        while b": " not in shown.rsplit(b"\n", 1)[-1] and time.monotonic() < deadline:
            shown += os.read(main, 4096)
        os.write(main, line.encode() + b"\n")
        shown += os.read(main, 4096)
    rc = proc.wait(timeout=timeout)
    try:
        while chunk := os.read(main, 4096):
            shown += chunk
    except OSError:  # EIO once the child side is closed
        pass
    os.close(main)
    return rc, shown.decode(errors="replace")


def test_hidden_prompt_does_not_echo_the_value(proj):
    rc, screen = _in_terminal(proj, ["creds", "set", "PROMPTED"], [CANARY])
    assert rc == 0 and "value for PROMPTED (hidden)" in screen and CANARY not in screen
    assert elf(proj, "creds", "get", "PROMPTED", value_ok=True).stdout == CANARY
    rc, screen = _in_terminal(proj, ["creds", "rekey"], ["new pass one", "new pass two"])
    assert rc == 2 and "differ" in screen


def test_file_passphrase_is_asked_on_the_terminal(proj, monkeypatch):
    """Without ELFCTL_MASTER_KEY or a usable keyring, `creds` asks for the file's passphrase on the
    terminal (the CLI's prompt, handed to the service): twice for a new file; two different
    answers are refused and store nothing."""
    monkeypatch.delenv("ELFCTL_MASTER_KEY")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    rc, screen = _in_terminal(proj, ["creds", "set", "ASKED"], [CANARY, "pass one", "pass two"])
    assert rc == 2 and "repeat it" in screen and "the passphrases differ" in screen, screen
    assert not (proj / ".elf" / "credentials.enc").exists()
    assert json.loads(elf(proj, "creds", "list", "--json").stdout) == []
    rc, screen = _in_terminal(proj, ["creds", "set", "ASKED"], [CANARY, "pass one", "pass one"])
    assert rc == 0 and "credential file passphrase" in screen and CANARY not in screen, screen
    monkeypatch.setenv("ELFCTL_MASTER_KEY", "pass one")
    assert elf(proj, "creds", "get", "ASKED", value_ok=True).stdout == CANARY
