"""`elfctl notify ...`: alerts to Slack and webhooks, through the store's outbox."""

from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.common import JsonOpt, finish, get_app

app = typer.Typer(help="Alerts to Slack and webhooks: test a channel, list and resend events.",
                  no_args_is_help=True)


def _report(r) -> str:
    lines = [f"sent {r.sent}, retrying {r.retrying}, failed {r.failed}"]
    lines += [f"  {e}" for e in r.errors[-5:]]
    lines += [f"  disabled by the receiver (410): {label}; `elfctl notify retry --enable` after fixing it"
              for label in r.disabled]
    return "\n".join(lines)


def _failure(r):
    from elfctl.errors import OperationFailed

    if r.failed or r.retrying or r.disabled:
        return OperationFailed(f"{r.failed + r.retrying} alert deliveries did not go through",
                               hint="`elfctl notify list --failed` shows them; `elfctl notify retry` resends",
                               code="notify_failed")
    return None


@app.command("test")
def test(ctx: typer.Context, json_mode: JsonOpt = False) -> None:
    """Send a test alert to every configured channel now; exit 1 when any did not take it."""
    from elfctl.services.notify import app as notify

    app_ = get_app(ctx, json_mode)
    r = notify.test(app_)
    finish(app_, r.to_data(), lambda _d: _report(r), _failure(r))


@app.command("send")
def send(
    ctx: typer.Context,
    watch: Annotated[bool, typer.Option("--watch", help="Keep delivering until interrupted.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Deliver the queued alerts that are due (commands that queue alerts start this on their own)."""
    from elfctl.services.notify import app as notify

    app_ = get_app(ctx, json_mode)
    try:
        r = notify.send(app_, watch=watch, progress=app_.output.info)
    except KeyboardInterrupt:
        return
    app_.output.result(r.to_data(), lambda _d: _report(r))


@app.command("list")
def list_(
    ctx: typer.Context,
    failed: Annotated[bool, typer.Option("--failed", help="Only events a channel did not take.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Recent alert events and their deliveries per channel."""
    from elfctl.services.notify import app as notify

    app_ = get_app(ctx, json_mode)
    data = notify.listing(app_, failed)

    def human(d):
        if not d["events"]:
            return "no failed alerts" if failed else "no alerts yet"
        out = []
        for e in d["events"]:
            states = ", ".join(f"{x['channel'].split(':')[0]} {x['state']}"
                               + (f" ({x['last_error']})" if x["state"] != "sent" and x["last_error"] else "")
                               for x in e["deliveries"]) or "not sent yet"
            out.append(f"{e['ts'][:19]}  {e['severity']:<8} {e['kind']:<20} {e['title']}  [{states}]  {e['id']}")
        out += [f"channel {c['channel']} disabled at {c['disabled_at'][:19]}: {c['reason']}" for c in d["disabled"]]
        return "\n".join(out)

    app_.output.result(data, human)


@app.command("retry")
def retry(
    ctx: typer.Context,
    event_ids: Annotated[list[str] | None, typer.Argument(help="Event ids (default: every failed one).")] = None,
    enable: Annotated[bool, typer.Option("--enable", help="Also re-enable channels disabled by a 410.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Send failed alerts again, then deliver what is due."""
    from elfctl.services.notify import app as notify

    app_ = get_app(ctx, json_mode)
    n = notify.retry(app_, event_ids or [], enable)
    r = notify.send(app_)
    finish(app_, {"requeued": n, **r.to_data()}, lambda _d: f"requeued {n}\n" + _report(r), _failure(r))
