"""The provider_limits table (migration 0105): each provider model's rate limit as its last answer
stated it. The gateway writes it (services/gateway/quota.py); `elfctl resources` and the gateways
read it."""

from __future__ import annotations

import datetime as dt

from elfctl.domain.clock import iso
from elfctl.domain.ratelimit import Limit
from elfctl.ports import Tx

_COLS = ("limit_requests", "remaining_requests", "limit_tokens", "remaining_tokens")


def _at(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def save(tx: Tx, lim: Limit) -> None:
    """Keep `lim` unless the row holds a later observation (another gateway's)."""
    tx.execute(
        "INSERT INTO provider_limits (provider, model, limit_requests, remaining_requests, limit_tokens, "
        "remaining_tokens, reset_requests_at, reset_tokens_at, observed_at) VALUES (?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (provider, model) DO UPDATE SET limit_requests = excluded.limit_requests, "
        "remaining_requests = excluded.remaining_requests, limit_tokens = excluded.limit_tokens, "
        "remaining_tokens = excluded.remaining_tokens, reset_requests_at = excluded.reset_requests_at, "
        "reset_tokens_at = excluded.reset_tokens_at, observed_at = excluded.observed_at "
        "WHERE provider_limits.observed_at <= excluded.observed_at",
        (lim.provider, lim.model, lim.limit_requests, lim.remaining_requests, lim.limit_tokens,
         lim.remaining_tokens, iso(lim.reset_requests_at) if lim.reset_requests_at else None,
         iso(lim.reset_tokens_at) if lim.reset_tokens_at else None, iso(lim.observed_at)))


def latest(tx: Tx) -> dict[tuple[str, str], Limit]:
    """(provider, model) -> its last stated Limit."""
    out = {}
    for r in tx.query("SELECT * FROM provider_limits"):
        out[(r["provider"], r["model"])] = Limit(
            r["provider"], r["model"], _at(r["observed_at"]),
            *(None if r[c] is None else int(r[c]) for c in _COLS),
            _at(r["reset_requests_at"]), _at(r["reset_tokens_at"]))
    return out
