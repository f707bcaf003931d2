"""Alerts, pure: the event, the channels it goes to, the payloads (Slack's incoming webhook and a
plain JSON webhook), the HMAC signature, and the delivery retry schedule."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SEVERITIES = ("info", "warning", "critical")
_EMOJI = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}

# The `network` retry policy of the resilience library: 5 attempts, exponential 2 s .. 30 s with
# full jitter. A delivery that used them all is `failed` (kept; `notify retry` sends it again).
MAX_ATTEMPTS = 5
BASE_S, CAP_S = 2.0, 30.0

SIGNATURE_HEADER = "X-Elfctl-Signature"
TIMESTAMP_HEADER = "X-Elfctl-Timestamp"


@dataclass(frozen=True)
class Event:
    kind: str  # budget.soft, budget.hard, deploy.failed, deploy.rolled_back, breaker.opened, ...
    title: str  # one line people read first
    dedupe_key: str  # the same key is one event (a crossing per window and team, an action once)
    severity: str = "warning"
    team: str | None = None
    details: dict = field(default_factory=dict)  # short fields shown under the title (no secrets)
    ts: str = ""
    id: str = ""


@dataclass(frozen=True)
class Channel:
    """Where events go. `id` is derived from the URL (a Slack webhook URL is itself a secret: it is
    never shown, stored or logged; `label` is what people see)."""

    id: str
    kind: str  # slack | webhook
    url: str
    label: str
    secret: str | None = None  # HMAC key of a generic webhook

    def __repr__(self) -> str:  # the URL and key never reach a log through repr
        return f"Channel({self.id}, {self.label})"


def channel(kind: str, url: str, secret: str | None = None) -> Channel:
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    parts = urlsplit(url)
    label = "slack" if kind == "slack" else f"webhook {parts.scheme}://{parts.hostname or '?'}"
    if kind == "webhook" and parts.port:
        label += f":{parts.port}"
    return Channel(f"{kind}:{digest}", kind, url, label, secret)


def valid_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _lines(event: Event) -> list[str]:
    return [f"{k}: {v}" for k, v in event.details.items() if v not in (None, "", [])]


def slack_payload(event: Event, project: str = "") -> dict:
    """Slack's incoming-webhook body: `text` (the notification and fallback line) plus `blocks`
    (a header line, the details as fields, long text such as a log tail in a code block, context)."""
    head = f"{_EMOJI.get(event.severity, '')} {event.title}".strip()
    blocks: list[dict] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{head}*"}}]
    short = {k: v for k, v in event.details.items() if v not in (None, "", []) and "\n" not in str(v)}
    if short:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{k}*\n{str(v)[:200]}"} for k, v in list(short.items())[:10]]})
    for k, v in event.details.items():
        if isinstance(v, str) and "\n" in v:  # a log tail reads best as code, its last 2,500 chars
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*{k}*\n```{v[-2500:]}```"}})
    where = f"elfctl {project}".strip()
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"{where} · {event.kind} · {event.ts}"}]})
    return {"text": head, "blocks": blocks}


def webhook_payload(event: Event, project: str = "") -> dict:
    return {"id": event.id, "kind": event.kind, "severity": event.severity, "title": event.title,
            "team": event.team, "ts": event.ts, "project": project, "details": event.details}


def body(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: str, raw: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>`: a receiver checks both, so a captured
    request cannot be replayed later with another timestamp."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def retry_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before attempt `attempts + 1` (full jitter)."""
    return (rng or random).uniform(0, min(CAP_S, BASE_S * 2 ** max(0, attempts - 1)))
