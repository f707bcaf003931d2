"""`elfctl breakers`, `elfctl queue`, `elfctl audit actions`: the fallback protocols' shared state."""

from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.common import JsonOpt, finish, get_app

breakers = typer.Typer(help="Shared circuit breakers: list, open (isolate) and close (reset) by hand.",
                       no_args_is_help=True)
queue = typer.Typer(help="Requests queued by the queue_request strategy: list, drain, drop.", no_args_is_help=True)
audit = typer.Typer(help="What the platform and the fallback protocols did by themselves.", no_args_is_help=True)

ReasonOpt = Annotated[str, typer.Option("--reason", help="Why, for the audit trail.")]
ResourceOpt = Annotated[str | None, typer.Option("--resource", help="Only this resource's queue.")]


def _table(cols, rows):
    from rich.table import Table

    table = Table()
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    return table


def _breakers_human(rows):
    if not rows:
        return "no circuit breakers yet (one appears when a call first goes through it)"
    return _table(("name", "state", "failures", "fail max", "reset s", "probe in s", "held by", "updated"),
                  [(b.name, b.state, b.failures, b.fail_max, b.reset_timeout_s, b.probe_in_s, b.held, b.updated_at)
                   for b in rows])


@breakers.command("list")
def breakers_list(ctx: typer.Context, json_mode: JsonOpt = False) -> None:
    """Every circuit in the store: state, failures counted, settings, who holds it open."""
    from elfctl.services.resilience import app as ops

    app_ = get_app(ctx, json_mode)
    finish(app_, ops.breakers_list(app_), _breakers_human)


@breakers.command("open")
def breakers_open(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The circuit's name.")],
                  reason: ReasonOpt = "", json_mode: JsonOpt = False) -> None:
    """Isolate NAME: every process refuses calls through it until `breakers close` (audited)."""
    from elfctl.services.resilience import app as ops

    app_ = get_app(ctx, json_mode)
    b = ops.breaker_open(app_, name, reason)
    finish(app_, b, lambda b: f"circuit {b.name} is open, held by {b.held}; calls through it now fail at once "
                              f"(processes that read it closed see this within 1 s)")


@breakers.command("close")
def breakers_close(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The circuit's name.")],
                   reason: ReasonOpt = "", json_mode: JsonOpt = False) -> None:
    """Reset NAME: closed, failure counters zeroed, a hand-held open released (audited)."""
    from elfctl.services.resilience import app as ops

    app_ = get_app(ctx, json_mode)
    b = ops.breaker_close(app_, name, reason)
    finish(app_, b, lambda b: f"circuit {b.name} is closed; calls go through again")


@queue.command("list")
def queue_list(ctx: typer.Context, resource: ResourceOpt = None, json_mode: JsonOpt = False) -> None:
    """Queued requests, oldest first: resource, function, attempts, last error, state."""
    from elfctl.services.resilience import app as ops

    app_ = get_app(ctx, json_mode)

    def human(rows):
        if not rows:
            return "no queued requests"
        return _table(("id", "resource", "team", "function", "queued at", "expires", "attempts", "state", "last error"),
                      [(e.id, e.resource, e.team, e.target, e.enqueued_at, e.expires_at, e.attempts, e.state,
                        e.last_error) for e in rows])

    finish(app_, ops.queue_list(app_, resource), human)


@queue.command("drain")
def queue_drain(ctx: typer.Context, resource: ResourceOpt = None,
                force: Annotated[bool, typer.Option("--force", help="Run them even while the circuit is open.")] = False,
                json_mode: JsonOpt = False) -> None:
    """Run the queued requests of healthy resources once each; exit 1 when any failed."""
    from elfctl.errors import OperationFailed
    from elfctl.services.resilience import app as ops

    app_ = get_app(ctx, json_mode)
    done = ops.queue_drain(app_, resource, force)
    failed = [d for d in done if d.result.startswith("failed")]

    def human(rows):
        if not rows:
            return "nothing to drain"
        return _table(("id", "resource", "function", "result"), [(d.id, d.resource, d.target, d.result) for d in rows])

    failure = OperationFailed(f"{len(failed)} of {len(done)} queued request(s) failed again; they stay queued",
                              hint="`elfctl queue list` shows their errors") if failed else None
    finish(app_, done, human, failure)


@queue.command("drop")
def queue_drop(ctx: typer.Context, ids: Annotated[list[str] | None, typer.Argument(help="Entry ids.")] = None,
               resource: ResourceOpt = None,
               everything: Annotated[bool, typer.Option("--all", help="Every queued request.")] = False,
               json_mode: JsonOpt = False) -> None:
    """Discard queued requests (by id, by --resource, or --all); each drop is audited."""
    from elfctl.services.resilience import app as ops

    app_ = get_app(ctx, json_mode)
    finish(app_, ops.queue_drop(app_, ids or [], resource, everything),
           lambda rows: f"dropped {len(rows)} queued request(s)")


@audit.command("actions")
def audit_actions(ctx: typer.Context,
                  since: Annotated[str | None, typer.Option("--since", help="e.g. 24h, 7d or 2026-01-31.")] = None,
                  team: Annotated[str | None, typer.Option("--team", help="Only this team's actions.")] = None,
                  limit: Annotated[int, typer.Option("--limit", min=1, max=100000, help="Newest N.")] = 200,
                  json_mode: JsonOpt = False) -> None:
    """Every automatic action, newest first: when, resource, trigger, strategy, target, result, actor."""
    from elfctl.services.resilience import app as ops

    app_ = get_app(ctx, json_mode)

    def human(rows):
        if not rows:
            return "no actions recorded"
        return _table(("time", "resource", "team", "trigger", "strategy", "target", "result", "actor"),
                      [(a.ts, a.resource, a.team, a.trigger, a.strategy, a.target, a.result, a.actor) for a in rows])

    finish(app_, ops.audit_actions(app_, since, team, limit), human)
