from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from elfctl.cli.common import JsonOpt, get_app


def init(
    ctx: typer.Context,
    path: Annotated[Path | None, typer.Argument(help="Project folder (default: current folder).")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Write a commented elfctl.toml, a teams/ folder and .elf/ (gitignored). Safe to run twice."""
    from elfctl.services.platform.project import init as run

    app = get_app(ctx, json_mode)
    result = run((path or Path.cwd()).resolve())

    def human(r):
        lines = [f"elfctl project at {r.root}"]
        lines += [f"  created {p}" for p in r.created]
        lines += [f"  kept    {p}" for p in r.kept]
        if not r.created:
            lines.append("nothing to do: already initialised")
        return "\n".join(lines)

    app.output.result(result, human)
