"""Health results shaped after the IETF health-check response draft. No I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

ORDER = {"pass": 0, "warn": 1, "fail": 2}


@dataclass
class Check:
    component: str
    status: str  # pass | warn | fail
    observed_value: object = None
    observed_unit: str | None = None
    output: str = ""  # what was measured, or why it is not passing
    hint: str | None = None  # what to do about it
    time: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    latency_ms: float | None = None

    def to_ietf(self) -> dict:
        data = {"status": self.status, "time": self.time}
        if self.observed_value is not None:
            data["observedValue"] = self.observed_value
        if self.observed_unit:
            data["observedUnit"] = self.observed_unit
        if self.output:
            data["output"] = self.output
        if self.hint:
            data["hint"] = self.hint
        if self.latency_ms is not None:
            data["latencyMs"] = round(self.latency_ms, 1)
        return data


def worst(statuses) -> str:
    return max(statuses, key=ORDER.__getitem__, default="pass")


@dataclass
class HealthReport:
    checks: list[Check]

    @property
    def status(self) -> str:
        return worst(c.status for c in self.checks)

    def exit_code(self, strict: bool = False) -> int:
        bad = {"fail", "warn"} if strict else {"fail"}
        return 1 if any(c.status in bad for c in self.checks) else 0

    def to_data(self) -> dict:
        checks: dict[str, list[dict]] = {}
        for c in self.checks:
            checks.setdefault(c.component, []).append(c.to_ietf())
        return {"status": self.status, "checks": checks}
