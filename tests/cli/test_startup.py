"""`--help` must stay instant: it may not import any SDK (DESIGN.md, "Start-up")."""

import subprocess
import sys

import pytest

HEAVY = ("litellm", "kubernetes", "docker", "supabase", "psycopg", "openai", "mcp", "keyring", "pybreaker",
         "opentelemetry")

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
    from elfctl.cli.main import COMMANDS

    names = list(COMMANDS)
    assert "db" in names and "infra" in names
    return names


def _probe(args, modules):
    proc = subprocess.run([sys.executable, "-c", PROBE.format(args=args, heavy=modules)],
                          capture_output=True, text=True, timeout=60)
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("LOADED:")][-1]
    return proc, line[7:]


@pytest.mark.parametrize("args", [["--help"], ["--version"]] + [[g, "--help"] for g in _groups()])
def test_help_imports_no_sdk(args):
    proc, loaded = _probe(args, HEAVY)
    assert loaded == "", f"`elfctl {' '.join(args)}` imported {loaded}"
    if args != ["--version"]:
        assert "Usage" in proc.stdout


@pytest.mark.parametrize("args", [["--help"], ["llm", "--help"], ["deploy", "--help"], ["health", "--help"]])
def test_help_with_telemetry_configured_imports_nothing_more(args, tmp_path):
    """Telemetry on (elfctl.toml and the standard variable): `--help` still imports no SDK."""
    import os

    (tmp_path / "elfctl.toml").write_text('[telemetry]\nenabled = true\nendpoint = "http://127.0.0.1:4318"\n')
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SERVICE_NAME": "x"}
    proc = subprocess.run([sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path, env=env)
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("LOADED:")][-1]
    assert line == "LOADED:" and "Usage" in proc.stdout


def test_only_the_command_that_runs_is_loaded():
    from elfctl.cli.main import COMMANDS

    modules = sorted({m.split(".")[2] for m, _attr, _help in COMMANDS.values()})
    probe = PROBE.replace("m.split('.')[0]", "m.split('.')[2] if m.startswith('elfctl.cli.') else m")
    for args, expected in ((["--help"], ""), (["creds", "--help"], "creds"), (["deploy", "--help"], "deploy")):
        proc = subprocess.run([sys.executable, "-c", probe.format(args=args, heavy=tuple(modules))],
                              capture_output=True, text=True, timeout=60)
        assert "Usage" in proc.stdout
        assert proc.stderr.splitlines()[-1] == "LOADED:" + expected


def test_listed_help_is_each_commands_own():
    """`elfctl --help` lists commands from COMMANDS without importing them: the line must say what
    the command's own help says."""
    import typer

    from elfctl.cli.main import COMMANDS, app

    root = typer.main.get_command(app)
    for name, (_module, _attr, listed) in COMMANDS.items():
        own = root.get_command(None, name)
        first = " ".join((own.short_help or own.help or "").split("\n\n")[0].split())
        assert first == listed, f"{name}: COMMANDS says {listed!r}, its help says {first!r}"


def test_help_lists_every_group():
    proc = subprocess.run([sys.executable, "-m", "elfctl", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for name in _groups() + ["init", "health"]:
        assert name in proc.stdout


def test_version():
    from elfctl import __version__

    proc = subprocess.run([sys.executable, "-m", "elfctl", "--version"], capture_output=True, text=True)
    assert proc.stdout.strip() == f"elfctl {__version__}"


@pytest.mark.parametrize("argv,expected", [
    (["creds", "run", "--", "make", "test"], True),
    (["-q", "--profile", "ci", "creds", "run", "--team", "a", "--", "x"], True),
    (["creds", "get", "NAME"], True),
    (["creds", "list"], False),
    (["creds", "run", "--help"], True),
    (["deploy", "creds"], False),
    (["creds"], False),
    (["health", "--", "creds", "run"], False),
])
def test_which_commands_start_the_key_derivation_early(argv, expected):
    from elfctl.cli.entry import _reads_credential_values

    assert _reads_credential_values(argv) is expected


def test_every_command_takes_json():
    """DESIGN: every command has --json (a pipeline can always ask for machine output)."""
    import typer

    from elfctl.cli.main import app

    def leaves(cmd, path):
        if getattr(cmd, "commands", None) is None:
            yield path, cmd
            return
        for name in cmd.list_commands(None):
            yield from leaves(cmd.get_command(None, name), [*path, name])

    found = list(leaves(typer.main.get_command(app), []))
    assert len(found) > 40
    missing = [" ".join(p) for p, c in found if "--json" not in {o for prm in c.params for o in getattr(prm, "opts", [])}]
    assert missing == []
