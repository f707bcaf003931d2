"""`make up` installs what running the platform needs, `make test` (and .ci/run) what testing needs too:
scripts/system-deps on a machine where nothing is installed yet (dpkg-query and apt-get replaced by
stubs that record what would be installed)."""

from __future__ import annotations

import os
import re
import subprocess

from tests.conftest import REPO

PLATFORM = {"docker.io", "docker-registry", "busybox-static", "mmdebstrap"}
TESTS_ONLY = {"chromium", "tmux", "pgbouncer", "gnome-keyring", "libsecret-tools", "dbus", "dbus-bin", "dbus-daemon", "dbus-x11"}


def _would_install(tmp_path, *args: str) -> tuple[int, set[str], str]:
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    (stubs / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")  # nothing is installed
    (stubs / "apt-get").write_text(f"#!/bin/sh\necho \"$*\" >> {tmp_path / 'apt.log'}\n")
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"}
    proc = subprocess.run([str(REPO / "scripts" / "system-deps"), *args], env=env, capture_output=True, text=True,
                          timeout=30)
    # as root it runs apt-get install; otherwise it names the packages in its hint (exit 3)
    log = (tmp_path / "apt.log").read_text() if (tmp_path / "apt.log").exists() else ""
    found = re.search(r"install -y \S*\s*(?:--no-install-recommends )?(.*)", log + proc.stderr)
    return proc.returncode, set(found.group(1).split()) if found else set(), proc.stderr


def test_platform_set_has_no_test_tools(tmp_path):
    code, pkgs, err = _would_install(tmp_path)
    assert code == (0 if os.geteuid() == 0 else 3), err
    assert pkgs == PLATFORM, err


def test_test_set_adds_the_test_tools(tmp_path):
    code, pkgs, err = _would_install(tmp_path, "--test")
    assert code == (0 if os.geteuid() == 0 else 3), err
    expected = PLATFORM | TESTS_ONLY
    if not os.path.exists("/usr/lib/postgresql/15/bin/initdb"):
        expected.add("postgresql-15")
    assert pkgs == expected, err


def test_unknown_option_is_a_usage_error(tmp_path):
    code, pkgs, err = _would_install(tmp_path, "--tests")
    assert code == 2 and pkgs == set()
    assert "unknown option '--tests'" in err and "scripts/system-deps [--test]" in err


def test_make_and_ci_use_the_right_set():
    make = (REPO / "Makefile").read_text()
    assert re.search(r"^up: .*\bsystem-deps\b", make, re.M) and not re.search(r"^up: .*test-deps", make, re.M)
    assert re.search(r"^test: .*\btest-deps\b", make, re.M)
    assert re.search(r"^test-deps:\n\tscripts/system-deps --test$", make, re.M)
    assert "scripts/system-deps --test" in (REPO / ".ci" / "run").read_text()
