"""The provider_limits table (migration 0105): each provider model's rate limit as its last answer
stated it. The gateway writes it (services/gateway/quota.py); `elfctl resources` and the gateways
read it."""

from __future__ import annotations

import datetime as dt

from elfctl.domain.clock import iso
from elfctl.domain.ratelimit import Limit
from elfctl.ports import Rows, Tx, runs_functions

_COLS = ("limit_requests", "remaining_requests", "limit_tokens", "remaining_tokens")


def _at(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def save(tx: Tx, lim: Limit) -> None:
    """Keep `lim` unless the row holds a later observation (another gateway's)."""
    row = {"provider": lim.provider, "model": lim.model, **{c: getattr(lim, c) for c in _COLS},
           "reset_requests_at": iso(lim.reset_requests_at) if lim.reset_requests_at else None,
           "reset_tokens_at": iso(lim.reset_tokens_at) if lim.reset_tokens_at else None,
           "observed_at": iso(lim.observed_at)}
    if runs_functions(tx):  # Postgres and Supabase: the same conditional upsert, elfctl_provider_limit_save (0150)
        tx.call("elfctl_provider_limit_save", {"p_limit": row})
        return
    tx.execute(
        f"INSERT INTO provider_limits ({', '.join(row)}) VALUES ({', '.join('?' * len(row))}) "
        "ON CONFLICT (provider, model) DO UPDATE SET limit_requests = excluded.limit_requests, "
        "remaining_requests = excluded.remaining_requests, limit_tokens = excluded.limit_tokens, "
        "remaining_tokens = excluded.remaining_tokens, reset_requests_at = excluded.reset_requests_at, "
        "reset_tokens_at = excluded.reset_tokens_at, observed_at = excluded.observed_at "
        "WHERE provider_limits.observed_at <= excluded.observed_at", list(row.values()))


def latest(store: Rows) -> dict[tuple[str, str], Limit]:
    """(provider, model) -> its last stated Limit (a select: every store serves it, REST too)."""
    out = {}
    for r in store.select("provider_limits"):
        out[(r["provider"], r["model"])] = Limit(
            r["provider"], r["model"], _at(r["observed_at"]),
            *(None if r[c] is None else int(r[c]) for c in _COLS),
            _at(r["reset_requests_at"]), _at(r["reset_tokens_at"]))
    return out
