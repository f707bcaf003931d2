"""The sender: delivers the outbox to every channel, with the `network` retry policy's schedule
(5 attempts, 2 s .. 30 s, full jitter; a receiver's Retry-After is honoured). A receiver that is down
loses nothing: the delivery stays pending, then `failed`, and `notify retry` sends it again. One that
answers 410 Gone is disabled and reported, so a deleted Slack webhook is not hammered forever."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from elfctl.domain import notify as rules
from elfctl.domain.clock import now
from elfctl.domain.notify import Channel, Event
from elfctl.ports import Store
from elfctl.services.notify import outbox


@dataclass
class Report:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    disabled: list[str] = field(default_factory=list)  # channel labels a receiver disabled (410)
    errors: list[str] = field(default_factory=list)  # "<channel label>: <why>", newest attempts

    def to_data(self) -> dict:
        return {"sent": self.sent, "retrying": self.retrying, "failed": self.failed,
                "disabled": self.disabled, "errors": self.errors}


def request(event: Event, ch: Channel, project: str, clock: Callable[[], float] = time.time
            ) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery: Slack's payload, or the JSON event signed with HMAC."""
    if ch.kind == "slack":
        return rules.body(rules.slack_payload(event, project)), {}
    raw = rules.body(rules.webhook_payload(event, project))
    headers = {"X-Elfctl-Event": event.id, "X-Elfctl-Event-Kind": event.kind}
    if ch.secret:
        stamp = str(int(clock()))
        headers[rules.TIMESTAMP_HEADER] = stamp
        headers[rules.SIGNATURE_HEADER] = rules.signature(ch.secret, stamp, raw)
    return raw, headers


def deliver(store: Store, channels: list[Channel], post, project: str = "", timeout_s: float = 5.0,
            at: dt.datetime | None = None, rng: random.Random | None = None) -> Report:
    """One pass: try every due (event, channel) once. `post(url, body, headers, timeout)` returns an
    adapters.webhook_http.Posted-like object (status, error, retry_after, ok)."""
    at = at or now()
    report = Report()
    by_id = {c.id: c for c in channels}
    lease = timeout_s * 2 + 5
    for event, ch_id, tried in outbox.due(store, list(by_id), at):
        ch = by_id[ch_id]
        if not outbox.claim(store, event.id, ch_id, tried, at, lease):
            continue  # another sender has it
        raw, headers = request(event, ch, project)
        got = post(ch.url, raw, headers, timeout_s)
        attempts = tried + 1
        if got.ok:
            outbox.settle(store, event.id, ch_id, "sent", attempts, None, None)
            report.sent += 1
            continue
        report.errors.append(f"{ch.label}: {got.error}")
        if got.status == 410:
            outbox.settle(store, event.id, ch_id, "failed", attempts, None, got.error, gone=got.error or "410 Gone")
            report.disabled.append(ch.label)
            report.failed += 1
            continue
        if attempts >= rules.MAX_ATTEMPTS:
            outbox.settle(store, event.id, ch_id, "failed", attempts, None, got.error)
            report.failed += 1
            continue
        wait = rules.retry_delay(attempts, rng)
        if got.retry_after is not None and got.retry_after <= rules.CAP_S * 4:
            wait = got.retry_after
        outbox.settle(store, event.id, ch_id, "pending", attempts, at + dt.timedelta(seconds=wait), got.error)
        report.retrying += 1
    return report
