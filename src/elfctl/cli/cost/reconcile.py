"""`elfctl cost reconcile` and `elfctl cost reprice`."""

from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.common import JsonOpt, finish, get_app
from elfctl.cli.cost import app


@app.command("reconcile")
def reconcile(
    ctx: typer.Context,
    fix: Annotated[
        bool, typer.Option("--fix", help="Rewrite the rollups and counters from the ledger.")
    ] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Recompute rollups and budget counters from the usage rows; exit 1 if they drifted."""
    from elfctl.errors import OperationFailed
    from elfctl.services.cost import app as cost_ops

    app_ = get_app(ctx, json_mode)
    res = cost_ops.reconcile_all(app_, fix)

    def human(r):
        lines = [
            f"{r.rows_checked:,} usage rows checked; {r.expired_released} expired reservation(s) released"
        ]
        lines += [
            f"drift {d.table} {d.key} {d.column}: stored {d.stored}, ledger says {d.computed}"
            for d in r.drift
        ]
        lines.append(
            "fixed from the ledger" if r.fixed else ("no drift" if r.ok else "run with --fix to repair")
        )
        return "\n".join(lines)

    failure = None
    if res.drift and not res.fixed:
        failure = OperationFailed(f"{len(res.drift)} rollup or counter value(s) drifted from the ledger",
                                  hint="`elfctl cost reconcile --fix` rewrites them from the usage rows")
    finish(app_, res, human, failure)


@app.command("reprice")
def reprice(
    ctx: typer.Context,
    since: Annotated[str, typer.Option("--since", help="First day (YYYY-MM-DD) to re-cost.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the difference; change nothing.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Apply the current prices to usage rows priced with another price version (or unpriced)."""
    from elfctl.services.cost import app as cost_ops

    app_ = get_app(ctx, json_mode)
    res = cost_ops.reprice(app_, since, dry_run)
    app_.output.result(
        res,
        lambda r: (
            f"{'would re-cost' if r.dry_run else 're-costed'} {r.rows_changed} row(s) "
            f"since {r.since} with {r.price_version}: {r.delta_nanousd / 1e9:+.9f} USD"
            + (f"; {r.still_unpriced} still unpriced" if r.still_unpriced else "")
        ),
    )
