"""Alerts wired from the App: the channels from `[notify]` (and SLACK_WEBHOOK_URL as a setting or a
credential), one delivery pass, a test event, and the detached sender a command starts when it
queued events (so the command itself never waits for a receiver)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from elfctl.domain import notify as rules
from elfctl.domain.clock import iso, now
from elfctl.errors import InputError
from elfctl.ids import new_id
from elfctl.ports import runs_functions
from elfctl.redact import register_secret
from elfctl.services.notify import outbox, sender

SLACK_CREDENTIAL = "SLACK_WEBHOOK_URL"


def _slack_url(app) -> str:
    url = app.config.get("notify.slack_webhook_url")
    # credentials need SQL (SUPABASE_DB_URL): over the REST API the URL comes from the setting alone
    if url or app.store.dialect == "rest" or "credentials" not in app.store.tables():
        return url
    from elfctl.services.credentials import vault as credentials

    got = credentials.resolve(app.vault("notify"), [SLACK_CREDENTIAL], required=False).get(SLACK_CREDENTIAL)
    return got.reveal() if got is not None else ""


def channels(app) -> list[rules.Channel]:
    """The configured channels; a URL that is not http(s) is a configuration error naming its key."""
    out = []
    slack = _slack_url(app)
    secret = app.config.get("notify.webhook_secret") or None
    pairs = ([("slack", slack, "notify.slack_webhook_url")] if slack else []) + [
        ("webhook", u, "notify.webhooks") for u in app.config.get("notify.webhooks")]
    for kind, url, key in pairs:
        if kind == "slack":
            register_secret(url)  # a Slack webhook URL is the credential itself
        if not rules.valid_url(url):
            shown = "the Slack webhook URL" if kind == "slack" else repr(url)
            raise InputError(f"{key}: {shown} is not an http(s) URL",
                             hint=f"set {key} to https://... (see `elfctl config show`)")
        out.append(rules.channel(kind, url, secret if kind == "webhook" else None))
    return out


def _project(app) -> str:
    return app.config.get("project.name") or app.config.root.name


def send(app, watch: bool = False, interval_s: float = 2.0, progress=lambda _m: None) -> sender.Report:
    """Deliver what is due once (or keep delivering until interrupted)."""
    chans, post = channels(app), app.webhook_post
    timeout = app.config.get("notify.timeout_s")
    total = sender.Report()
    while True:
        got = sender.deliver(app.store, chans, post, _project(app), timeout)
        total.sent += got.sent
        total.retrying = got.retrying
        total.failed += got.failed
        total.disabled += got.disabled
        total.errors = (total.errors + got.errors)[-20:]
        if got.sent or got.failed or got.retrying:
            progress(f"sent {got.sent}, retrying {got.retrying}, failed {got.failed}")
        if not watch:
            return total
        time.sleep(interval_s)


def test(app) -> sender.Report:
    """Queue a test event and deliver it now to every channel (the one alert that waits: on purpose)."""
    chans = channels(app)
    if not chans:
        raise InputError("no alert channel configured",
                         hint="set notify.slack_webhook_url (or SLACK_WEBHOOK_URL, or a credential of that "
                              "name) or notify.webhooks in elfctl.toml")
    ev = rules.Event("test", "elfctl test alert: this channel receives elfctl's alerts",
                     dedupe_key=f"test:{new_id()}", severity="info", ts=iso(now()),
                     details={"sent by": os.environ.get("USER") or "elfctl", "channels": len(chans)})
    outbox.emit(app.store, ev)
    return send(app)


def listing(app, failed_only: bool) -> dict:
    return {"events": outbox.listing(app.store, failed_only),
            "disabled": list(outbox.disabled(app.store).values())}


def retry(app, event_ids: list[str], enable: bool) -> int:
    if runs_functions(app.store):  # one call, also over REST
        return outbox.retry(app.store, event_ids, enable)
    with app.store.transaction() as tx:
        return outbox.retry(tx, event_ids, enable)


def kick(app) -> bool:
    """After a command queued events: start a detached `elfctl notify send` that delivers them, so
    this command returns at once. Nothing happens when no channel is configured."""
    try:
        if not outbox.take_emitted() or not channels(app):
            return False
    except Exception:  # noqa: BLE001 - a broken [notify] setting shows in `notify test`, not here
        return False
    env = {**os.environ, "ELFCTL_STORE_URL": app.config.store_url}  # the env, not argv: ps shows argv
    if app.config.profile:
        env["ELFCTL_PROFILE"] = app.config.profile
    subprocess.Popen([sys.executable, "-m", "elfctl", "--quiet", "notify", "send"], cwd=app.config.root,
                     env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
    return True
