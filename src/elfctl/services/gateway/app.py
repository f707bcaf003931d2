"""Wiring of `elfctl gateway ...`: the process-wide Gateway a server runs with, `serve`, and the key
commands' use cases."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

from elfctl.ports import Store
from elfctl.services.gateway import keys

# A team's policy (chain from team.yaml, budget from the store) is read again after this long, so an
# edited team.yaml or `cost budget set` reaches a running gateway within a second.
POLICY_TTL_S = 1.0


class Gateway:
    """What one gateway process serves with: config, store, the LLM Caller (the same call path as
    `elfctl.llm`), the key Authenticator and the teams' policies."""

    def __init__(self, config: Any, store: Store, caller: Any, on_close: Callable[[], None] = lambda: None):
        self.config = config
        self.store = store
        self.caller = caller
        self.auth = keys.Authenticator(store)
        self._on_close = on_close
        self._policies: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self.prober = None

    def start(self) -> None:
        """Before the first request: record what killed processes left in the spool, and start
        importing litellm in the background (4 s here, far more under load) so the first budgeted
        or streamed call does not pay for it."""
        self.caller.spool.replay(self.store)
        from elfctl.services.registry import prober

        self.prober = prober.start(self.config, self.store)  # keeps deployed teams' registry entries alive
        warm = getattr(self.caller.client, "warm", None)
        if warm is not None:
            threading.Thread(target=warm, name="gateway-warm", daemon=True).start()

    def close(self) -> None:
        """After the last request: what the writer holds is recorded before the store closes."""
        if self.prober is not None:
            self.prober.stop()
        try:
            self.caller.recorder.close()
        finally:
            self._on_close()

    def policy(self, team: str):
        """The team's llm.Policy (chain, budget), at most POLICY_TTL_S old."""
        from elfctl.services.llm.app import team_policy

        t = time.monotonic()
        hit = self._policies.get(team)
        if hit is not None and t - hit[0] < POLICY_TTL_S:
            return hit[1]
        policy = team_policy(self.config, self.store, team)
        with self._lock:
            self._policies[team] = (t, policy)
        return policy


def preflight(store: Store) -> None:
    """Before serving: the store answers and holds the gateway's tables (else every request would fail)."""
    from elfctl.errors import StoreNotMigrated

    if "gateway_keys" not in store.tables():
        raise StoreNotMigrated(f"the store {store.display_url} has no gateway_keys table (migration 0070)",
                               hint="run `elfctl db migrate`")


def serve(cfg: Any, factory: str, host: str | None, port: int | None, workers: int | None,
          on_ready: Callable[[str], None] = lambda _url: None) -> None:
    """Run the gateway until stopped (SIGINT/SIGTERM). `factory` is the import string of a function
    building the ASGI app in each worker process."""
    from elfctl.adapters import asgi_server

    host = host or cfg.get("gateway.host")
    port = cfg.get("gateway.port") if port is None else port
    workers = cfg.get("gateway.workers") if workers is None else workers
    asgi_server.run(factory, host, int(port), int(workers), float(cfg.get("gateway.idle_timeout_s")), on_ready)


# --- keys ------------------------------------------------------------------------------------------


def parse_expiry(value: str | None) -> dt.datetime | None:
    """`--expires`: a duration (90d, 12h, 30m) from now, or an ISO date/time; None: never."""
    if not value:
        return None
    from elfctl.domain.clock import now
    from elfctl.errors import InputError

    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    v = value.strip().lower()
    if v[:-1].isdigit() and v[-1:] in units and int(v[:-1]) > 0:
        return now() + dt.timedelta(seconds=int(v[:-1]) * units[v[-1]])
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--expires {value!r}: not a duration or a date",
                         hint="give a duration such as 90d, 12h, 30m, or an ISO date such as 2027-01-31") from None
    at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    if at <= now():
        raise InputError(f"--expires {value!r}: that moment has passed", hint="give a future date or a duration")
    return at


def create_key(store: Store, team: str, expires: str | None) -> dict:
    expires_at = parse_expiry(expires)
    raw = keys.mint(store, team, expires_at=expires_at)
    key = next(k for k in keys.listing(store, team) if k.prefix == keys.split(raw))
    return {"key": raw, "prefix": key.prefix, "team": key.team, "expires_at": key.expires_at}


def revoke_key(store: Store, prefix: str) -> dict:
    from elfctl.errors import InputError, OperationFailed

    if not (len(prefix) == keys.PREFIX_LEN and set(prefix) <= set("0123456789abcdef")):
        raise InputError(f"PREFIX {prefix!r}: not a key prefix",
                         hint=f"give the {keys.PREFIX_LEN} hex digits `elfctl gateway key list` shows")
    if not keys.revoke(store, prefix):
        known = any(k.prefix == prefix for k in keys.listing(store))
        raise OperationFailed(f"key {prefix}: " + ("already revoked" if known else "no such key"),
                              hint="see `elfctl gateway key list`", code="not_found" if not known else "failed")
    return {"prefix": prefix, "revoked": True}
