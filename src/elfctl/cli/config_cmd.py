from __future__ import annotations

import typer

from elfctl.cli.common import JsonOpt, get_app

app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)


@app.command("show")
def show(ctx: typer.Context, json_mode: JsonOpt = False) -> None:
    """Print every setting, its effective value (secrets masked) and where it came from."""
    from elfctl.services.platform.settings import effective

    out = get_app(ctx, json_mode)
    result = effective(out.config)

    def human(r):
        from rich.table import Table

        table = Table(title=f"elfctl configuration ({r['file'] or 'no elfctl.toml: defaults'})")
        table.add_column("key")
        table.add_column("value")
        table.add_column("source")
        for row in r["settings"]:
            table.add_row(row["key"], str(row["value"]), row["source"])
        return table

    st = result["store"]
    out.output.info(f"store in use: {st['url']} ({st['why']})")
    if st["note"]:
        out.output.warn(st["note"])
    out.output.result(result, human)
