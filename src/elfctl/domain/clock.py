"""Time as the store keeps it: aware UTC datetimes, written as ISO-8601 text that sorts in time
order (every timestamp column is compared as text)."""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime, timespec: str = "milliseconds") -> str:
    """ISO-8601 in UTC; milliseconds unless told (credential dates keep whole seconds)."""
    return t.astimezone(dt.UTC).isoformat(timespec=timespec)
