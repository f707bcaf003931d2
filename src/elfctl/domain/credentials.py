"""Credential rules with no I/O: names, durations, `.env` parsing, expiry status, the audit chain."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from pathlib import Path

from elfctl.domain import clock
from elfctl.domain.names import is_dns_label
from elfctl.domain.team import ENV_NAME
from elfctl.errors import InputError

MAX_NAME = 128
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_DURATION_S = 36500 * 86400
GENESIS = "0" * 64  # the "previous MAC" of the first audit entry


def check_name(name: str, where: str = "NAME") -> str:
    if not isinstance(name, str) or not ENV_NAME.match(name) or len(name) > MAX_NAME:
        shown = name if isinstance(name, str) and len(name) <= 64 and name.isprintable() else "(this name)"
        raise InputError(
            f"{where}: {shown!r} is not a valid credential name",
            hint="use UPPER_SNAKE_CASE like an environment variable: letters A-Z, digits, '_', "
            f"not starting with a digit, at most {MAX_NAME} characters (e.g. OPENAI_API_KEY)",
        )
    return name


def check_team(team: str | None) -> str:
    """A team scope ('' = global). Team names are DNS-1123 labels, as in team.yaml."""
    if team is None or team == "":
        return ""
    if not is_dns_label(team):
        raise InputError(
            f"--team: {team!r} is not a valid team name",
            hint="team names are DNS-1123 labels: lower case letters, digits and '-'",
        )
    return team


def parse_duration(text: str, where: str) -> dt.timedelta:
    """'90d', '24h', '30m', '2w', '45s' -> timedelta."""
    m = _DURATION.match(text or "")
    if not m:
        raise InputError(
            f"{where}: {text!r} is not a duration", hint="write a number and a unit: 45s, 30m, 24h, 90d, 2w"
        )
    seconds = int(m[1]) * _UNITS[m[2]]
    if seconds > MAX_DURATION_S:  # past this, now + duration overflows datetime (year 9999)
        raise InputError(f"{where}: {text!r} is longer than 100 years", hint="write at most 36500d (or 5214w)")
    return dt.timedelta(seconds=seconds)


def parse_since(text: str, where: str = "--since") -> dt.datetime:
    """A `--since` value: a duration back from now (24h, 7d) or an ISO date/time (UTC unless it says)."""
    try:
        return clock.now() - parse_duration(text, where)
    except InputError:
        try:
            start = dt.datetime.fromisoformat(text)
        except ValueError:
            raise InputError(f"{where} {text!r}: neither a duration nor a date",
                             hint="use 24h, 7d or 2026-01-31") from None
        return start if start.tzinfo else start.replace(tzinfo=dt.UTC)


def iso(t: dt.datetime | None) -> str | None:
    """Credential dates in whole seconds; None stays None."""
    return clock.iso(t, "seconds") if t else None


def parse_iso(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


# --- .env files ---------------------------------------------------------------------------------

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def parse_dotenv(text: str, path: Path | str) -> list[tuple[str, str]]:
    """KEY=VALUE lines (optional `export `, # comments, '...' literal, "..." with escapes).
    Errors name the file and line number but never echo the line: it may hold a value."""
    out: list[tuple[str, str]] = []
    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        where = f"{path}:{no}"
        if "=" not in line:
            raise InputError(
                f"{where}: not a KEY=VALUE line (no '=')",
                hint="fix or remove that line; comments start with #",
            )
        key, rest = line.split("=", 1)
        key = key.strip()
        if not ENV_NAME.match(key) or len(key) > MAX_NAME:
            raise InputError(
                f"{where}: the name before '=' is not a valid credential name",
                hint="names are UPPER_SNAKE_CASE like environment variables",
            )
        out.append((key, _dotenv_value(rest.strip(), where)))
    return out


def _dotenv_value(rest: str, where: str) -> str:
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        value, i = [], 1
        while i < len(rest):
            ch = rest[i]
            if ch == quote:
                tail = rest[i + 1 :].strip()
                if tail and not tail.startswith("#"):
                    raise InputError(
                        f"{where}: text after the closing quote",
                        hint="put a comment after '#', or quote the whole value",
                    )
                return "".join(value)
            if ch == "\\" and quote == '"' and i + 1 < len(rest):
                value.append(_ESCAPES.get(rest[i + 1], "\\" + rest[i + 1]))
                i += 2
                continue
            value.append(ch)
            i += 1
        raise InputError(
            f"{where}: the quoted value has no closing {quote}",
            hint="multi-line values are not supported; use \\n inside double quotes",
        )
    value = re.split(r"\s+#", rest, maxsplit=1)[0].strip()
    return value


# --- expiry -------------------------------------------------------------------------------------


@dataclass
class Finding:
    name: str
    scope: str
    status: str  # warn | fail
    reason: str  # "expired" | "expires soon" | "past max age"
    since: str  # ISO time: when it expired / will expire / passed its max age


def expiry_findings(
    rows: list[dict], at: dt.datetime, max_age: dt.timedelta | None, warn_before: dt.timedelta
) -> list[Finding]:
    found: list[Finding] = []
    for r in rows:
        expires = parse_iso(r.get("expires_at"))
        born = parse_iso(r.get("rotated_at") or r.get("created_at"))
        if expires and expires <= at:
            found.append(Finding(r["name"], r["scope"], "fail", "expired", iso(expires)))
        elif max_age is not None and born and born + max_age <= at:
            found.append(Finding(r["name"], r["scope"], "fail", "past max age", iso(born + max_age)))
        elif expires and expires - warn_before <= at:
            found.append(Finding(r["name"], r["scope"], "warn", "expires soon", iso(expires)))
        elif max_age is not None and born and born + max_age - warn_before <= at:
            found.append(Finding(r["name"], r["scope"], "warn", "reaches max age soon", iso(born + max_age)))
    return found


# --- tamper-evident audit chain ---------------------------------------------------------------

AUDIT_FIELDS = ("ts", "os_user", "host", "command", "action", "name", "scope", "version", "result")


def entry_mac(key: bytes, prev_mac: str, entry: dict) -> str:
    """HMAC-SHA256 over the previous MAC and the entry's fields (not its seq: the chain itself
    carries the order, so a moved row no longer fits between its neighbours)."""
    parts = [prev_mac] + ["" if entry.get(f) is None else str(entry[f]) for f in AUDIT_FIELDS]
    msg = "\x1f".join(p.replace("\x1f", " ") for p in parts).encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def head_mac(key: bytes, count: int, last_mac: str) -> str:
    return hmac.new(key, f"head\x1f{count}\x1f{last_mac}".encode(), hashlib.sha256).hexdigest()


@dataclass
class Problem:
    seq: int | None
    kind: str  # edited | removed | reordered | truncated | head
    detail: str


@dataclass
class VerifyResult:
    entries: int
    problems: list[Problem] = field(default_factory=list)
    unverified: int = 0  # entries keyed by a lost key (before a new-key entry): links checked, MACs not

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(key: bytes, rows: list[dict], head: dict | None, new_key: str | None = None) -> VerifyResult:
    """Walk the entries in seq order. Each row carries its own MAC and the MAC it chains to
    (prev_mac), so a broken link says what happened: an edited row no longer matches its MAC, a
    row whose predecessor is missing follows a removal, a row that chains to a later one was moved.
    Entries before the last one whose action is `new_key` were MAC'd with a key that is lost: only
    their links are checked (counted in `unverified`)."""
    result = VerifyResult(entries=len(rows))
    starts = [i for i, r in enumerate(rows) if new_key and r["action"] == new_key]
    result.unverified = starts[-1] if starts else 0
    seq_of = {r["mac"]: r["seq"] for r in rows}
    prev_mac, prev_seq = GENESIS, None
    for i, r in enumerate(rows):
        seq = r["seq"]
        if i >= result.unverified and not hmac.compare_digest(entry_mac(key, r["prev_mac"] or "", r), r["mac"]):
            result.problems.append(
                Problem(seq, "edited", f"entry {seq}: its MAC does not match its content (edited)")
            )
        elif r["prev_mac"] != prev_mac:
            after = seq_of.get(r["prev_mac"])
            if after is not None:
                result.problems.append(
                    Problem(seq, "reordered", f"entry {seq} belongs after entry {after} (entries reordered)")
                )
            elif prev_seq is None:
                result.problems.append(Problem(seq, "removed", f"entries before {seq} were removed"))
            else:
                result.problems.append(
                    Problem(seq, "removed", f"entries between {prev_seq} and {seq} were removed")
                )
        prev_mac, prev_seq = r["mac"], seq
    count = len(rows)
    if head is None:
        if rows:
            result.problems.append(Problem(None, "head", "the audit head record is missing (deleted)"))
    elif not hmac.compare_digest(head_mac(key, int(head["count"]), head["last_mac"]), head["mac"]):
        result.problems.append(Problem(None, "head", "the audit head record was edited"))
    elif int(head["count"]) != count or head["last_mac"] != prev_mac:
        if head["last_mac"] not in seq_of:
            result.problems.append(
                Problem(
                    None,
                    "removed",
                    f"the newest entries after {prev_seq} were removed "
                    f"(the log had {head['count']}, has {count})",
                )
            )
        elif int(head["count"]) != count:
            if not any(p.kind == "removed" for p in result.problems):
                result.problems.append(
                    Problem(None, "removed", f"the log had {head['count']} entries, has {count}")
                )
        else:
            result.problems.append(Problem(None, "reordered", "the newest entry is not last (reordered)"))
    return result
