"""Which errors are worth retrying, and how long a server asked us to wait.

Errors of httpx, requests, the openai SDK, urllib and psycopg are recognised by what they carry (a
status code, a response with headers, a SQLSTATE) and by their class names, never by importing those
libraries: team code pays for no SDK it does not use, and `elfctl --help` imports none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

RETRIABLE_STATUS = frozenset({408, 425, 429})  # and every 5xx
NEVER_STATUS = frozenset({400, 401, 403, 404, 405, 409, 410, 413, 415, 422})

# Class names (anywhere in the MRO) that mean "the connection failed" or "it took too long":
# httpx.ConnectError/RemoteProtocolError, requests.ConnectionError, openai.APIConnectionError,
# urllib.error.URLError (which wraps a socket error), aiohttp.ClientConnectionError ...
_CONNECTION_NAMES = ("ConnectError", "ConnectionError", "APIConnectionError", "RemoteProtocolError",
                     "URLError", "ClientConnectionError", "ServerDisconnectedError", "NetworkError")
_TIMEOUT_NAMES = ("Timeout", "TimeoutError", "TimeoutException", "APITimeoutError", "ReadTimeout")
# SQLSTATEs a repeat may get past: serialization failure, deadlock, connection classes, shutdown,
# "cannot connect now" (a starting server), too many connections.
_DB_STATES = ("40001", "40P01", "57P01", "57P02", "57P03", "53300")


def _names(exc: BaseException) -> list[str]:
    return [c.__name__ for c in type(exc).__mro__]


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an error carries: openai's and litellm's `status_code`, httpx's and requests'
    `response.status_code`, urllib's HTTPError `code`, elfctl's LLMError `status`."""
    for holder in (exc, getattr(exc, "response", None)):
        if holder is None:
            continue
        for attr in ("status_code", "status"):
            value = getattr(holder, attr, None)
            if isinstance(value, int) and 100 <= value <= 599:
                return value
    code = getattr(exc, "code", None)  # urllib.error.HTTPError
    if isinstance(code, int) and 100 <= code <= 599 and "HTTPError" in _names(exc):
        return code
    return None


def is_connection(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError) or getattr(exc, "kind", None) == "connection":
        return True
    from elfctl.errors import Unreachable

    return isinstance(exc, Unreachable) or any(n in _CONNECTION_NAMES for n in _names(exc))


def is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError) or getattr(exc, "kind", None) == "timeout":
        return True
    return any(n in _TIMEOUT_NAMES for n in _names(exc))


def is_transient_db(exc: BaseException) -> bool:
    """A store error a repeat may get past: connection lost or refused, serialization failure,
    deadlock, a lock held too long; elfctl's own store errors (Unreachable, Conflict, StoreLocked)
    and psycopg's by SQLSTATE or OperationalError."""
    from elfctl.errors import Conflict, StoreLocked, Unreachable

    if isinstance(exc, Unreachable | Conflict | StoreLocked):
        return True
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(state, str) and (state.startswith("08") or state in _DB_STATES):
        return True
    names = _names(exc)
    if "OperationalError" in names:  # psycopg/sqlite3: connection gone, database locked
        return True
    return is_connection(exc)


def is_retriable(exc: BaseException) -> bool:
    """The default: connection errors, timeouts, HTTP 408/425/429/5xx and transient store errors;
    never a 4xx that says the request itself is wrong (400/401/403/404/422 ...)."""
    status = status_of(exc)
    if status is not None:
        return status in RETRIABLE_STATUS or status >= 500
    transient = getattr(exc, "transient", None)  # elfctl's LLMError says so itself
    if isinstance(transient, bool):
        return transient
    return is_connection(exc) or is_timeout(exc) or is_transient_db(exc)


def is_network(exc: BaseException) -> bool:
    """The `network` policy: connection errors and timeouts only (a 5xx answer is not retried)."""
    return status_of(exc) is None and (is_connection(exc) or is_timeout(exc))


RETRY_ON: dict[str, Callable[[BaseException], bool]] = {
    "any": is_retriable,
    "network": is_network,
    "database": is_transient_db,
}


def _headers(exc: BaseException):
    for holder in (getattr(exc, "response", None), exc):
        headers = getattr(holder, "headers", None)
        if headers is not None and hasattr(headers, "get"):
            return headers
    return None


def retry_after(exc: BaseException, now: Callable[[], dt.datetime] | None = None) -> float | None:
    """Seconds the server asked to wait: the `Retry-After` header (delta-seconds or an HTTP date)
    of the error's response, else an explicit `retry_after` attribute. None when neither says."""
    headers = _headers(exc)
    raw = headers.get("Retry-After") or headers.get("retry-after") if headers is not None else None
    if raw is not None:
        seconds = parse_retry_after(str(raw), now)
        if seconds is not None:
            return seconds
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else None


def parse_retry_after(raw: str, now: Callable[[], dt.datetime] | None = None) -> float | None:
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        import email.utils

        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        current = now() if now else dt.datetime.now(dt.UTC)
        return max(0.0, (when - current).total_seconds())
    return seconds if seconds >= 0 and seconds == seconds and seconds != float("inf") else None
