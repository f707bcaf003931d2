"""`--help` must stay instant: it may not import any SDK (DESIGN.md, "Start-up")."""

import subprocess
import sys

import pytest

HEAVY = ("litellm", "kubernetes", "docker", "supabase", "psycopg", "openai", "mcp", "keyring", "pybreaker")

PROBE = """
import sys
sys.argv = ["elfctl", *{args!r}]
from elfctl.cli.main import main
try:
    main()
except SystemExit:
    pass
loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))
print("LOADED:" + ",".join(loaded), file=sys.stderr)
"""


def _groups():
    from elfctl.cli.main import app

    names = [g.name for g in app.registered_groups]
    assert "db" in names and "infra" in names
    return names


@pytest.mark.parametrize("args", [["--help"], ["--version"]] + [[g, "--help"] for g in _groups()])
def test_help_imports_no_sdk(args):
    proc = subprocess.run([sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)],
                          capture_output=True, text=True, timeout=60)
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("LOADED:")][-1]
    assert line == "LOADED:", f"`elfctl {' '.join(args)}` imported {line[7:]}"
    if args != ["--version"]:
        assert "Usage" in proc.stdout


def test_help_lists_every_group():
    proc = subprocess.run([sys.executable, "-m", "elfctl", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for name in _groups() + ["init", "health"]:
        assert name in proc.stdout


def test_version():
    from elfctl import __version__

    proc = subprocess.run([sys.executable, "-m", "elfctl", "--version"], capture_output=True, text=True)
    assert proc.stdout.strip() == f"elfctl {__version__}"
