"""One LLM call as the ledger records it (a row of `api_usage`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

from elfctl.domain.names import is_dns_label

# Bounds of one row: far above any real call, far enough below int64 that sums stay exact.
MAX_COST_NANOUSD = 100_000 * 10**9  # $100,000 for one call
MAX_TOKENS = 2**31 - 1
MAX_TEXT = 1024
OUTCOMES = ("ok", "error", "blocked")
REQUIRED = ("request_id", "ts", "team", "requested_model", "model")
COUNTS = ("prompt_tokens", "completion_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens")
_OPTIONAL_TEXT = ("provider", "agent", "price_version", "fallback_reason", "source", "prompt_hash")


def prompt_hash(messages) -> str | None:
    """SHA-256 hex of the canonical JSON of a call's messages (migration 0050's `prompt_hash`)."""
    if not messages:
        return None
    text = json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def parse_iso(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


# daily_cost_summary's additive columns, in table order
COUNTERS = (
    "calls",
    "errors",
    "fallbacks",
    "unpriced",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_nanousd",
)
SUM_COUNTERS = ", ".join(f"SUM({c}) AS {c}" for c in COUNTERS)  # a grouped read of the rollup


@dataclass
class UsageCounts:
    """The counters of a group of calls (a rollup row, or a sum of them)."""

    calls: int = 0
    errors: int = 0
    fallbacks: int = 0
    unpriced: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_nanousd: int = 0

    @classmethod
    def of(cls, row: dict, **extra):
        """From a row read with SUM_COUNTERS (SQL's NULL sum of no rows is 0)."""
        return cls(**{c: int(row[c] or 0) for c in COUNTERS}, **extra)

    def add(self, other: UsageCounts) -> None:
        for c in COUNTERS:
            setattr(self, c, getattr(self, c) + getattr(other, c))

    def rates(self) -> dict[str, float]:
        """error_rate and fallback_rate (shares of the calls; 0 without calls)."""
        return {"error_rate": self.errors / self.calls if self.calls else 0.0,
                "fallback_rate": self.fallbacks / self.calls if self.calls else 0.0}


@dataclass
class UsageRow:
    request_id: str
    ts: str  # iso()
    team: str
    requested_model: str
    model: str  # the model that answered (or was last tried, when the call failed)
    provider: str | None = None
    agent: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_nanousd: int = 0
    priced: bool = True
    price_version: str | None = None
    latency_ms: int | None = None
    outcome: str = "ok"  # ok | error | blocked
    fallback_reason: str | None = None
    source: str = "elfctl"  # elfctl | callback | import:<format>
    prompt_hash: str | None = None  # prompt_hash(messages): `cost optimize` finds repeated prompts
    revision: int | None = None  # the deployed revision of the team (from its gateway key; migration 0070)
    # Not stored in api_usage: the budget reservation this row settles (spool replay needs it).
    reservation_id: str | None = field(default=None, compare=False)

    @property
    def day(self) -> str:
        return self.ts[:10]

    def to_dict(self) -> dict:
        return dict(self.__dict__)  # flat fields only: no deep copy needed


def _text_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return f"must be text, got {type(value).__name__}"
    if len(value) > MAX_TEXT:
        return f"is longer than {MAX_TEXT} characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # read with surrogateescape: bytes that were not UTF-8
        return "is not valid UTF-8"
    return None


def _int_problem(value: object, hi: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be a whole number, got {value!r}"
    return None if 0 <= value <= hi else f"{value} is not in 0..{hi:,}"


def row_problem(r: UsageRow) -> str | None:
    """Why a row cannot enter the ledger, as 'field: why', or None when it can."""
    for name in (*REQUIRED, *_OPTIONAL_TEXT):
        value = getattr(r, name)
        if value is None and name not in REQUIRED:
            continue
        problem = "is empty" if value == "" and name in REQUIRED else _text_problem(value)
        if problem:
            return f"{name} {problem}"
    if not is_dns_label(r.team):
        return f"team {r.team!r} is not a team name (a DNS-1123 label: a-z, 0-9 and '-', at most 63)"
    for name, hi in (*((c, MAX_TOKENS) for c in COUNTS), ("cost_nanousd", MAX_COST_NANOUSD)):
        problem = _int_problem(getattr(r, name), hi)
        if problem:
            return f"{name} {problem}"
    if r.latency_ms is not None and (problem := _int_problem(r.latency_ms, MAX_TOKENS)):
        return f"latency_ms {problem}"
    if r.revision is not None and (problem := _int_problem(r.revision, MAX_TOKENS)):
        return f"revision {problem}"
    if r.outcome not in OUTCOMES:
        return f"outcome {r.outcome!r} is not one of {', '.join(OUTCOMES)}"
    return None


COLUMNS = (
    "request_id",
    "ts",
    "day",
    "team",
    "agent",
    "requested_model",
    "model",
    "provider",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_nanousd",
    "priced",
    "price_version",
    "latency_ms",
    "outcome",
    "fallback_reason",
    "source",
    "prompt_hash",
    "revision",
)


def values(r: UsageRow) -> tuple:
    return (
        r.request_id,
        r.ts,
        r.day,
        r.team,
        r.agent,
        r.requested_model,
        r.model,
        r.provider,
        r.prompt_tokens,
        r.completion_tokens,
        r.cached_tokens,
        r.cache_write_tokens,
        r.reasoning_tokens,
        r.cost_nanousd,
        1 if r.priced else 0,
        r.price_version,
        r.latency_ms,
        r.outcome,
        r.fallback_reason,
        r.source,
        r.prompt_hash,
        r.revision,
    )
