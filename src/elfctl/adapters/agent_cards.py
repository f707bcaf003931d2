"""Fetch an outside agent's A2A card over HTTP(S) (stdlib urllib: a card is one small GET).
Errors become ElfErrors here: no answer is Unreachable (exit 3), no card where one should be or a
body that is not JSON is InputError (exit 2), naming the URLs tried."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

from elfctl.errors import InputError, Unreachable

MAX_BYTES = 1 << 20  # a card is a few KiB; refuse to read a hostile endless body


def candidates(url: str, paths: tuple[str, ...]) -> list[str]:
    """URL itself when it names a .json file, else each well-known path under its origin + path."""
    parts = urlsplit(url)
    if parts.path.endswith(".json"):
        return [url]
    base = parts.path.rstrip("/")
    return [urlunsplit((parts.scheme, parts.netloc, base + p, "", "")) for p in paths]


def fetch(url: str, paths: tuple[str, ...], timeout_s: float = 5.0, what: str = "agent card") -> tuple[str, object]:
    """(the URL that answered, its JSON) of the first candidate that answers 200. `what` names the
    document in errors (the card, or the JWKS its signatures are checked with)."""
    tried = []
    for where in candidates(url, paths):
        req = urllib.request.Request(where, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 (http/https checked by caller)
                body = resp.read(MAX_BYTES + 1)
        except urllib.error.HTTPError as exc:
            tried.append(f"{where}: HTTP {exc.code}")
            continue
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"{where}: no answer ({reason})", hint="check the URL and that the agent runs") from None
        if len(body) > MAX_BYTES:
            raise InputError(f"{where}: the {what} is larger than 1 MiB", hint=f"is this {_a(what)}?")
        try:
            return where, json.loads(body)
        except ValueError as exc:
            raise InputError(f"{where}: not JSON ({exc})", hint=f"the URL must serve {_a(what)}") from None
    if what != "agent card":
        raise InputError(f"no {what} at {url}: " + "; ".join(tried), hint="check the URL")
    raise InputError(f"no agent card at {url}: " + "; ".join(tried),
                     hint="give the agent's base URL (it serves /.well-known/agent-card.json) or the card's own URL")


def _a(what: str) -> str:
    return "an A2A agent card" if what == "agent card" else f"a {what}"
