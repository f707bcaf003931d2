"""POST a JSON body to a webhook (Slack or generic) with the standard library: one bounded request,
its outcome as data. No exception leaves: an alert never fails the sender's other deliveries."""

from __future__ import annotations

import email.utils
import time
import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass(frozen=True)
class Posted:
    status: int  # the HTTP status, 0 when no answer (refused, timeout, DNS)
    error: str | None = None  # why it was not a 2xx, for people (never the URL: it may be the secret)
    retry_after: float | None = None  # seconds, from a 429/503's Retry-After

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, when.timestamp() - time.time()) if when else None


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Posted:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", "User-Agent": "elfctl", **headers})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - http(s) checked by the caller
            resp.read(65536)
            return Posted(resp.status)
    except urllib.error.HTTPError as exc:
        text = exc.read(300).decode("utf-8", "replace").strip() if exc.fp else ""
        try:
            after = _retry_after(exc.headers.get("Retry-After"))
        except (TypeError, ValueError):
            after = None
        return Posted(exc.code, f"HTTP {exc.code} {exc.reason}" + (f": {text[:200]}" if text else ""), after)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Posted(0, f"no answer: {type(reason).__name__}: {reason}"[:300])
