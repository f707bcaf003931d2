"""`elfctl --help` and each group's `--help` beside a bare Typer app with the same command tree and the
same plain-text help (elfctl loads only the group that runs; the bare app builds them all)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import PY, Row, time_command

BARE_TEMPLATE = '''
import typer
app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  context_settings={{"help_option_names": ["-h", "--help"]}})
@app.callback()
def root({root_params}):
    """{root_help}"""
{body}
app()
'''


def _params(cmd) -> str:
    out = []
    for i, p in enumerate(cmd.params):
        if p.name in ("help",):
            continue
        flag = getattr(p, "is_flag", False)
        kind = "bool" if flag else "str"
        default = "False" if flag else "None"
        decl = ", ".join(repr(o) for o in p.opts) if getattr(p, "opts", None) else ""
        if p.param_type_name == "argument":
            out.append(f"p{i}: {kind} = typer.Argument({default})")
        else:
            out.append(f"p{i}: {kind} = typer.Option({default}, {decl}, help={p.help!r})")
    return ", ".join(out)


def bare_app_source() -> str:
    """Python source of a Typer app with elfctl's groups, commands and options, and no work."""
    import typer

    from elfctl.cli.main import app

    root = typer.main.get_command(app)
    body = []
    for name in root.list_commands(None):
        cmd = root.get_command(None, name)
        sub = getattr(cmd, "commands", None)
        if sub is None:
            body.append(f"@app.command({name!r})\ndef c_{name.replace('-', '_')}({_params(cmd)}):\n"
                        f"    {(cmd.help or '')!r}\n")
            continue
        var = f"g_{name.replace('-', '_')}"
        body.append(f"{var} = typer.Typer(help={cmd.help!r}, no_args_is_help=True)\n"
                    f"app.add_typer({var}, name={name!r})")
        for sname, scmd in sub.items():
            body.append(f"@{var}.command({sname!r})\ndef {var}_{sname.replace('-', '_')}({_params(scmd)}):\n"
                        f"    {(scmd.help or '')!r}\n")
    return BARE_TEMPLATE.format(root_params=_params(root), root_help=root.help, body="\n".join(body))


def run(env) -> list[Row]:
    from elfctl.cli.main import COMMANDS

    groups = [n for n, (_m, attr, _h) in COMMANDS.items() if attr == "app"]
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare.py"
        bare.write_text(bare_app_source())
        rows = []
        elf = time_command([PY, "-m", "elfctl", "--help"], repeat=9)
        base = time_command([PY, str(bare), "--help"], repeat=9)
        rows.append(Row("startup", "elfctl --help", elf, "ms", "bare typer --help", base,
                        "<150 ms and <=1.25x", ok=elf < 150 and elf <= 1.25 * base))
        for g in groups:
            elf = time_command([PY, "-m", "elfctl", g, "--help"], repeat=5)
            base = time_command([PY, str(bare), g, "--help"], repeat=5)
            rows.append(Row("startup", f"elfctl {g} --help", elf, "ms", f"bare typer {g} --help", base,
                            "<250 ms and <=1.25x", ok=elf < 250 and elf <= 1.25 * base))
        bare_python = time_command([PY, "-c", "pass"], repeat=9)
        rows.append(Row("startup", "python -c pass", bare_python, "ms"))
    return rows
