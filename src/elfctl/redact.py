"""Redaction: nothing secret reaches output, logs, errors or history.

Two mechanisms, both cheap and dependency-free:
- `redact_url` drops the password from a connection URL (parsed, not regex-guessed);
- `register_secret` remembers values read from a secret store, and `scrub` replaces any of them
  (and any URL password) in text before it is printed or logged. `secret(value)` registers the value
  and wraps it in a `Secret` (domain/secret.py): the one way the program builds one.

The registry is the process's one piece of shared redaction state; it lives here, at the edge.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from elfctl.domain.secret import MASK, Secret

_secrets: set[str] = set()
_URL_PASSWORD = re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)(?P<pw>[^@\s/]+)(?P<post>@)")


def register_secret(value: str) -> None:
    """Remember a secret value so that `scrub` removes it from anything shown. Short values
    (< 4 chars) are not registered: masking them would mangle ordinary text."""
    if value and len(value) >= 4:
        _secrets.add(value)


def secret(value: str) -> Secret:
    """A Secret for `value`, registered first so that nothing printed later can show it."""
    if not isinstance(value, str):
        raise TypeError("Secret holds a str")
    register_secret(value)
    return Secret(value)


def plain(value) -> str:
    """The text of a secret value given as a Secret (or anything with reveal/get_secret_value/value)
    or a str, for the one API that needs it; registered for redaction on the way out."""
    for attr in ("reveal", "get_secret_value", "value"):
        got = getattr(value, attr, None)
        if got is not None:
            value = got() if callable(got) else got
            break
    value = str(value)
    register_secret(value)
    return value


def redact_url(url: str) -> str:
    """`postgresql://user:pw@host/db` -> `postgresql://user:****@host/db`; other URLs unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _URL_PASSWORD.sub(lambda m: m["pre"] + MASK + m["post"], url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}:{MASK}@{netloc[1]}"))


def scrub(text: str) -> str:
    """Remove URL passwords and every registered secret value from `text`."""
    if not text:
        return text
    if "@" in text:  # a URL password needs one; the scan costs ~1 ms per 20 KB of output
        text = _URL_PASSWORD.sub(lambda m: m["pre"] + MASK + m["post"], text)
    for value in sorted(_secrets, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


class RedactingFilter:
    """Logging filter that scrubs the formatted message of every record. A plain class (logging takes
    any object with filter()): importing logging cost ~2 ms of every command's start."""

    def filter(self, record) -> bool:
        msg = record.getMessage()
        clean = scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True
