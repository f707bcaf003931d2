"""A provider's rate limit as its last answer stated it: OpenAI's `x-ratelimit-*` headers (also sent
by most OpenAI-compatible servers). No I/O.

    x-ratelimit-limit-requests: 10000      x-ratelimit-remaining-requests: 9999
    x-ratelimit-limit-tokens: 30000000     x-ratelimit-remaining-tokens: 29999990
    x-ratelimit-reset-requests: 6ms        x-ratelimit-reset-tokens: 1m2.5s

The reset headers say when the window refills: a duration (Go-style `1h2m3.5s`, `20ms`, or plain
seconds, as OpenAI sends), or a moment (an HTTP-date, an RFC 3339 time, or Unix epoch seconds, as
some compatible servers send). Either is kept as the moment it points at, so a reading taken later
knows the window refilled.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

PREFIX = "x-ratelimit-"
STALE_S = 120.0  # a limit stated with no reset moment is not trusted for longer than this
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def duration_s(text: str | None) -> float | None:
    """`6m0s` -> 360.0, `20ms` -> 0.02, `1.5` -> 1.5; anything else (a date, junk) -> None."""
    if not text:
        return None
    text = text.strip().lower()
    try:
        value = float(text)
        return value if 0 <= value < 1e9 else None
    except ValueError:
        pass
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    total = sum(float(n) * _UNIT_S[u] for n, u in parts)
    return total if total < 1e9 else None  # past any real window (and past what a timedelta holds)


NAMES = frozenset(PREFIX + n for n in ("limit-requests", "remaining-requests", "reset-requests", "limit-tokens",
                                       "remaining-tokens", "reset-tokens"))
_LITELLM = "llm_provider-"  # litellm passes a provider's own headers on under this prefix


def headers_of(headers) -> dict[str, str]:
    """The six x-ratelimit-* headers among an answer's (a mapping, or (name, value) pairs), names
    lower-cased, litellm's `llm_provider-` prefix dropped, values cut to 64 characters."""
    items = headers.items() if hasattr(headers, "items") else headers
    out: dict[str, str] = {}
    for name, value in items or ():
        name = str(name).lower()
        if name.startswith(_LITELLM):
            name = name[len(_LITELLM):]
        if name in NAMES:
            out[name] = str(value)[:64]
    return out


EPOCH_FROM = 1e9  # a plain number this large is a Unix time (2001-09-09 on), not a window's length


def reset_at(text: str | None, at: dt.datetime) -> dt.datetime | None:
    """The moment a reset header points at, read at `at`: a duration from `at`, or a date as stated
    (HTTP-date, RFC 3339, epoch seconds); None for junk, a date without a time zone, or one more than
    EPOCH_FROM seconds away."""
    s = duration_s(text)
    if s is not None:
        return at + dt.timedelta(seconds=s)
    if not text or len(text) > 64:
        return None
    text = text.strip()
    try:
        when = dt.datetime.fromtimestamp(float(text), dt.UTC)
    except (ValueError, OverflowError, OSError):
        when = _date(text)
    if when is None or when.tzinfo is None or abs((when - at).total_seconds()) >= EPOCH_FROM:
        return None
    return when


def _date(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text)  # RFC 3339 (`2026-11-28T00:16:00Z`, `+01:00`)
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(text)  # HTTP-date (`Sat, 28 Nov 2026 00:16:00 GMT`)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _count(text: str | None) -> int | None:
    try:
        value = int(float(text)) if text is not None else None
    except (ValueError, OverflowError):  # junk, or "1e999" (inf)
        return None
    return value if value is None or value >= 0 else None


@dataclass(frozen=True)
class Limit:
    provider: str
    model: str
    observed_at: dt.datetime
    limit_requests: int | None = None
    remaining_requests: int | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_requests_at: dt.datetime | None = None
    reset_tokens_at: dt.datetime | None = None

    def used_percent(self, at: dt.datetime) -> float | None:
        """The fuller of the two windows, as a percent of its limit; a window whose reset moment has
        passed counts as refilled (0%); None when no window states both its limit and what is left,
        or when no reset moment was stated and the statement is older than STALE_S."""
        if self.reset_requests_at is None and self.reset_tokens_at is None \
                and (at - self.observed_at).total_seconds() > STALE_S:
            return None
        shares = []
        for limit, left, reset in ((self.limit_requests, self.remaining_requests, self.reset_requests_at),
                                   (self.limit_tokens, self.remaining_tokens, self.reset_tokens_at)):
            if not limit or left is None:
                continue
            refilled = reset is not None and reset <= at
            shares.append(0.0 if refilled else 100.0 * max(0, limit - left) / limit)
        return max(shares) if shares else None

    def describe(self, at: dt.datetime) -> str:
        """`3 of 100 requests, 2,000 of 30,000 tokens left (reset in 12s)`, as the headers said."""
        parts, resets = [], []
        for what, limit, left, reset in (("requests", self.limit_requests, self.remaining_requests,
                                          self.reset_requests_at),
                                         ("tokens", self.limit_tokens, self.remaining_tokens, self.reset_tokens_at)):
            if left is None:
                continue
            parts.append(f"{left:,} of {limit:,} {what}" if limit else f"{left:,} {what}")
            if reset is not None:
                secs = (reset - at).total_seconds()
                resets.append(f"{what} reset in {secs:.0f}s" if secs > 0 else f"{what} reset {-secs:.0f}s ago")
        text = ", ".join(parts) + " left" if parts else "no remaining count stated"
        return text + (f" ({'; '.join(resets)})" if resets else "")


def parse(provider: str, model: str, headers: dict[str, str], at: dt.datetime) -> Limit | None:
    """The Limit a response's headers state (lower-case names), or None when they state none."""
    get = headers.get
    rr, rt = _count(get(PREFIX + "remaining-requests")), _count(get(PREFIX + "remaining-tokens"))
    if rr is None and rt is None:
        return None

    return Limit(provider, model, at, _count(get(PREFIX + "limit-requests")), rr, _count(get(PREFIX + "limit-tokens")),
                 rt, reset_at(get(PREFIX + "reset-requests"), at), reset_at(get(PREFIX + "reset-tokens"), at))
