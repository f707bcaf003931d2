"""The use_cache strategy's exact response cache (migration 0080): a response stored under the hash
of its request, served until its TTL passes. Values are JSON; an object with `model_dump()` (an
openai/litellm response) is stored as that dict and served as the dict."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from elfctl.domain.clock import iso, now
from elfctl.ports import Store

MISS = object()


def key_of(resource: str, request: Any) -> str:
    """resource + ':' + SHA-256 of the request's canonical JSON (sorted keys; non-JSON values by repr)."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
    return f"{resource}:{hashlib.sha256(text.encode()).hexdigest()}"


def encode(value: Any) -> str:
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def put(store: Store, resource: str, key: str, value: Any, ttl_s: float) -> bool:
    """Store (or replace) the response; False when it is not JSON (nothing stored)."""
    try:
        text = encode(value)
    except (TypeError, ValueError):
        return False
    t = now()
    store.execute(
        "INSERT INTO response_cache (key, resource, value, stored_at, expires_at, hits) VALUES (?, ?, ?, ?, ?, 0) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, stored_at = excluded.stored_at, "
        "expires_at = excluded.expires_at",
        (key, resource, text, iso(t), iso(t + dt.timedelta(seconds=ttl_s))),
    )
    return True


def get(store: Store, key: str) -> Any:
    """The fresh response stored under `key` (its hit counted), else MISS."""
    t = iso(now())
    rows = store.query("SELECT value FROM response_cache WHERE key = ? AND expires_at > ?", (key, t))
    if not rows:
        return MISS
    store.execute("UPDATE response_cache SET hits = hits + 1 WHERE key = ?", (key,))
    return json.loads(rows[0]["value"])


def purge(store: Store) -> int:
    """Remove expired entries."""
    return store.execute("DELETE FROM response_cache WHERE expires_at <= ?", (iso(now()),))
