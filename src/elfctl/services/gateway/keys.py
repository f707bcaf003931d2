"""The gateway's team keys (table gateway_keys, migration 0070).

A key reads `elf_<prefix>_<secret>`: 8 hex digits that name it (list, revoke, the row's primary key)
and 48 hex digits of secret. It is returned once by `mint`; the store keeps only the sha256 of the
whole key, so nothing in the store can be presented back. The team (and the deployed revision) a
call is charged to come from the key alone.

`Authenticator` answers a gateway's per-request question "whose key is this?" from a small cache
refreshed every `ttl_s` (0.5 s), so a revoked key is refused by every gateway process within 1 s
without a store query per request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from elfctl.domain.clock import iso, now
from elfctl.domain.names import check_team_name
from elfctl.ports import Rows, Store, runs_functions

PREFIX_LEN = 8
_SECRET_LEN = 48
_COLUMNS = "prefix, team, revision, created_at, expires_at, last_used_at, revoked_at"
# last_used_at is written at most this often per key and process: a write per request would cost
# more than the call's own ledger row.
_TOUCH_EVERY_S = 60.0


@dataclass(frozen=True)
class Key:
    prefix: str
    team: str
    revision: int | None
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def split(raw: object) -> str | None:
    """The prefix of a well-formed key, else None (anything else is refused before the store)."""
    if not isinstance(raw, str) or len(raw) != 4 + PREFIX_LEN + 1 + _SECRET_LEN:
        return None
    head, prefix, secret = raw[:4], raw[4:4 + PREFIX_LEN], raw[5 + PREFIX_LEN:]
    if head != "elf_" or raw[4 + PREFIX_LEN] != "_":
        return None
    hexdigits = set("0123456789abcdef")
    if not set(prefix) <= hexdigits or not set(secret) <= hexdigits:
        return None
    return prefix


def mint(store: Store, team: str, revision: int | None = None, expires_at: dt.datetime | None = None) -> str:
    """A new key for `team` (and a deployed `revision`), valid until `expires_at` (None: until
    revoked). Returns the raw key: it is never shown again (only its hash reaches the store)."""
    check_team_name(team)
    while True:  # a prefix already taken (1 in 4e9) draws again
        prefix = secrets.token_hex(PREFIX_LEN // 2)
        raw = f"elf_{prefix}_{secrets.token_hex(_SECRET_LEN // 2)}"
        row = {"prefix": prefix, "hash": _hash(raw), "team": team, "revision": revision, "created_at": iso(now()),
               "expires_at": iso(expires_at) if expires_at else None}
        if runs_functions(store):  # Postgres and Supabase: elfctl_key_create (0160), also over REST
            if store.call("elfctl_key_create", {"p_key": row}):
                return raw
            continue
        with store.transaction() as tx:
            if not tx.query("SELECT 1 FROM gateway_keys WHERE prefix = ?", [prefix]):
                tx.execute(f"INSERT INTO gateway_keys ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                           list(row.values()))
                return raw


def revoke(store: Store, prefix: str) -> bool:
    """Revoke the key named by `prefix`. False when no such key is live (unknown or already revoked)."""
    if runs_functions(store):  # Postgres and Supabase: elfctl_key_revoke (0160), also over REST
        return bool(store.call("elfctl_key_revoke", {"p_prefix": prefix, "p_at": iso(now())}))
    with store.transaction() as tx:
        return tx.execute("UPDATE gateway_keys SET revoked_at = ? WHERE prefix = ? AND revoked_at IS NULL",
                          [iso(now()), prefix]) > 0


def revoke_team_revisions(store: Store, team: str, keep: set[int]) -> list[str]:
    """Revoke the team's live revision keys whose revision is not in `keep` (deploy: once a
    revision's replicas are retired). Operator keys (revision NULL) are left alone. Returns the
    prefixes revoked."""
    with store.transaction() as tx:
        rows = tx.query("SELECT prefix, revision FROM gateway_keys WHERE team = ? AND revision IS NOT NULL "
                        "AND revoked_at IS NULL ORDER BY prefix", [team])
        gone = [r["prefix"] for r in rows if int(r["revision"]) not in keep]
        at = iso(now())
        for prefix in gone:
            tx.execute("UPDATE gateway_keys SET revoked_at = ? WHERE prefix = ?", [at, prefix])
    return gone


def _key(row: dict) -> Key:
    return Key(prefix=row["prefix"], team=row["team"],
               revision=None if row["revision"] is None else int(row["revision"]),
               created_at=row["created_at"], expires_at=row["expires_at"],
               last_used_at=row["last_used_at"], revoked_at=row["revoked_at"])


def listing(store: Rows, team: str | None = None) -> list[Key]:
    """Every key (or one team's), oldest first. Never the key itself: it is not stored."""
    rows = store.select("gateway_keys", None if team is None else {"team": team}, columns=_COLUMNS,
                        order="created_at,prefix")  # a select: the REST store serves it too
    return [_key(r) for r in rows]


def live(key: Key, at: dt.datetime | None = None) -> bool:
    """Neither revoked nor expired at `at` (now)."""
    if key.revoked_at is not None:
        return False
    return key.expires_at is None or key.expires_at > iso(at or now())


class Authenticator:
    """raw key -> Key, or None for unknown, revoked or expired; the same answer for each, so a
    caller learns nothing about which teams exist. Results (misses too) are kept `ttl_s`, so a
    revocation reaches every process within ttl_s plus one query. Thread-safe."""

    _MAX = 4096  # cached answers; a flood of made-up keys clears the cache rather than grow it

    def __init__(self, store: Store, ttl_s: float = 0.5):
        self.store = store
        self._calls = runs_functions(store)  # the per-request lookup is a database function there
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Key | None]] = {}
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def lookup(self, raw_key: object) -> Key | None:
        prefix = split(raw_key)
        if prefix is None:
            return None
        digest = _hash(raw_key)  # type: ignore[arg-type]
        t = time.monotonic()
        hit = self._cache.get(digest)
        if hit is None or t - hit[0] > self.ttl_s:
            if self._calls:  # Postgres and Supabase: elfctl_key_lookup (the table stays closed to API roles)
                found = self.store.call("elfctl_key_lookup", {"p_prefix": prefix})
                rows = [found] if found else []
            else:
                rows = self.store.query(f"SELECT {_COLUMNS}, hash FROM gateway_keys WHERE prefix = ?", [prefix])
            key = _key(rows[0]) if rows and secrets.compare_digest(rows[0]["hash"], digest) else None
            with self._lock:
                if len(self._cache) >= self._MAX:
                    self._cache.clear()
                self._cache[digest] = (t, key)
        else:
            key = hit[1]
        if key is None or not live(key):
            return None
        self._touch(key, t)
        return key

    def cached(self, raw_key: str) -> bool:
        """Whether lookup(raw_key) answers without touching the store (a server may then call it on
        its event loop rather than a thread)."""
        return self.peek(raw_key)[0]

    def peek(self, raw_key: str) -> tuple[bool, Key | None]:
        """(True, what lookup(raw_key) answers) when that needs no store work, else (False, None):
        one hash per request on the server's hot path rather than `cached` then `lookup`."""
        if split(raw_key) is None:
            return True, None
        t = time.monotonic()
        hit = self._cache.get(_hash(raw_key))
        if hit is None or t - hit[0] > self.ttl_s:
            return False, None
        key = hit[1]
        if key is None or not live(key):
            return True, None
        last = self._touched.get(key.prefix)
        if last is None or t - last >= _TOUCH_EVERY_S:
            return False, None
        return True, key

    def _touch(self, key: Key, t: float) -> None:
        last = self._touched.get(key.prefix)
        if last is not None and t - last < _TOUCH_EVERY_S:
            return
        self._touched[key.prefix] = t
        if self._calls:
            self.store.call("elfctl_key_touch", {"p_prefix": key.prefix, "p_at": iso(now())})
            return
        self.store.execute("UPDATE gateway_keys SET last_used_at = ? WHERE prefix = ?", [iso(now()), key.prefix])
