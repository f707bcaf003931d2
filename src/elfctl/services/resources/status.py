"""What the resource monitor reports: one Reading per thing measured, its status against the type's
thresholds, and the worst per type. No I/O.

Statuses, mildest first: healthy < warning < critical < exhausted (100% or more of the limit).
`unknown` (nothing to read it from) and `not_configured` (no such resource in this project) are
neither good nor bad: they never trigger a policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from elfctl.config import RESOURCE_TYPES as TYPES  # thresholds and strategies are config defaults

STRATEGY_NAMES = ("retry", "switch_provider", "degrade_service", "queue_request", "use_cache", "scale_down",
                  "circuit_break")

RANK = {"not_configured": -2, "unknown": -1, "healthy": 0, "warning": 1, "critical": 2, "exhausted": 3}
BAD = ("critical", "exhausted")


def classify(percent: float | None, warning: float, critical: float) -> str:
    if percent is None:
        return "unknown"
    if percent >= critical:  # a critical level set above 100% means "never exhausted" too
        return "exhausted" if percent >= 100 else "critical"
    return "warning" if percent >= warning else "healthy"


@dataclass
class Reading:
    type: str
    subject: str  # what was measured: "host", "container:elfctl-mkt-r3-0", "team:mkt", "registry"
    status: str
    value: float | None = None  # percent of the limit, when there is one
    detail: str = ""  # what was measured, in words
    team: str | None = None  # the team it concerns, when one (policies act on teams)
    latency_ms: float | None = None


@dataclass
class TypeReport:
    type: str
    status: str
    warning: float
    critical: float
    readings: list[Reading] = field(default_factory=list)
    ms: float = 0.0  # how long measuring it took


def worst(statuses, default: str = "healthy") -> str:
    return max(statuses, key=RANK.__getitem__, default=default)


def reading(type_: str, subject: str, percent: float | None, limits: tuple[float, float], detail: str,
            team: str | None = None, latency_ms: float | None = None) -> Reading:
    """A measured share of a limit, classified against the type's (warning, critical)."""
    value = None if percent is None else round(percent, 1)
    return Reading(type_, subject, classify(percent, *limits), value, detail, team, latency_ms)


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB" if n < 2**30 else f"{n / 2**30:.1f} GiB"
