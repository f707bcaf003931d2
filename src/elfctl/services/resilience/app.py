"""The use cases behind `elfctl breakers`, `elfctl queue` and `elfctl audit actions`, over the App."""

from __future__ import annotations

from elfctl.services.actions import trail
from elfctl.services.resilience import breakers, queue


def actor() -> str:
    """Who acts by hand: `user:<os user>`."""
    import getpass

    try:
        return f"user:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "user:unknown"


def _name(name: str) -> str:
    from elfctl.errors import InputError
    from elfctl.resilience.circuit import check_name

    try:
        return check_name(name)
    except ValueError as exc:
        raise InputError(f"NAME: {exc}", hint="`elfctl breakers list` shows the circuits") from None


def breakers_list(app) -> list[breakers.Breaker]:
    return breakers.listing(app.store)


def breaker_open(app, name: str, reason: str = "") -> breakers.Breaker:
    return breakers.open_(app.store, _name(name), actor(), reason)


def breaker_close(app, name: str, reason: str = "") -> breakers.Breaker:
    return breakers.close(app.store, _name(name), actor(), reason)


def queue_list(app, resource: str | None = None) -> list[queue.Entry]:
    return queue.listing(app.store, resource)


def queue_drain(app, resource: str | None = None, force: bool = False) -> list[queue.Drained]:
    """Run the queued calls whose resource is healthy (its circuit closed), or all with `force`. The
    project root is put on sys.path so the team modules the rows name can be imported."""
    import sys

    root = str(app.config.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    store = app.store

    def healthy(res: str) -> bool:
        rows = store.select("breaker_state", {"name": res}, columns="state")  # over REST too
        return not rows or rows[0]["state"] == "closed"

    return queue.drain(store, actor(), resource, healthy=None if force else healthy)


def queue_drop(app, ids: list[str], resource: str | None, everything: bool) -> list[queue.Entry]:
    from elfctl.errors import InputError

    if not ids and not resource and not everything:
        raise InputError("queue drop: nothing named", hint="give entry ids, --resource NAME, or --all")
    return queue.drop(app.store, actor(), ids or None, resource)


def audit_actions(app, since: str | None = None, team: str | None = None, limit: int = 200) -> list[trail.Action]:
    from elfctl.domain.credentials import parse_since
    from elfctl.domain.names import check_team_name

    start = parse_since(since) if since else None
    if team is not None:
        check_team_name(team)
    return trail.recent(app.store, start, team, limit)
