"""Measure every resource type at once: each in its own daemon thread, all within one timeout, so
`elfctl resources` answers in about the slowest measurement (cpu's two samples) and a hung engine,
cluster or database is a critical row, never a hung command."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from elfctl.domain.clock import iso, now
from elfctl.errors import ElfError
from elfctl.services.resources.status import BAD, Reading, TypeReport, worst

Measure = Callable[[], list[Reading]]


@dataclass
class Snapshot:
    time: str
    types: list[TypeReport]
    steps: list = field(default_factory=list)  # policy.Step: what the policies did or would do
    applied: bool = False

    @property
    def status(self) -> str:
        return worst(t.status for t in self.types)

    def type(self, name: str) -> TypeReport:
        return next(t for t in self.types if t.type == name)

    def to_data(self) -> dict:
        from dataclasses import asdict

        return {"time": self.time, "status": self.status, "applied": self.applied,
                "resources": {t.type: {"status": t.status, "warning": t.warning, "critical": t.critical,
                                       "ms": t.ms,
                                       "readings": [{k: v for k, v in asdict(r).items() if k != "type"}
                                                    for r in t.readings]}
                              for t in self.types},
                "policy": [asdict(s) for s in self.steps]}


def measure(measures: dict[str, Measure | str], limits: dict[str, tuple[float, float]], timeout_s: float) -> Snapshot:
    """measures: type -> a function returning its readings, or a string saying why the type is not
    configured in this project."""
    from elfctl.services.platform.health import TIMED_OUT, run_concurrently

    outcomes = run_concurrently({n: fn for n, fn in measures.items() if callable(fn)}, timeout_s)
    types = []
    for name, fn in measures.items():
        warn, crit = limits[name]
        if not callable(fn):
            types.append(TypeReport(name, "not_configured", warn, crit, [Reading(name, "-", "not_configured",
                                                                                 detail=fn)]))
            continue
        got, ms = outcomes[name]
        if got is TIMED_OUT:
            got = [Reading(name, "-", "critical", detail=f"no answer within {timeout_s:g}s")]
        elif isinstance(got, ElfError):
            got = [Reading(name, "-", "critical", detail=got.message)]
        elif isinstance(got, BaseException):
            got = [Reading(name, "-", "critical", detail=f"{type(got).__name__}: {got}")]
        elif not got:
            got = [Reading(name, "-", "not_configured", detail="nothing of this kind in use here")]
        types.append(TypeReport(name, worst((r.status for r in got), default="unknown"), warn, crit, got,
                                round(ms, 1)))
    return Snapshot(iso(now()), types)


def bad(snapshot: Snapshot) -> list[Reading]:
    return [r for t in snapshot.types for r in t.readings if r.status in BAD]
