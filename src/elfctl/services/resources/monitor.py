"""Measure every resource type at once: each in its own daemon thread, all within one timeout, so
`elfctl resources` answers in about the slowest measurement (cpu's two samples) and a hung engine,
cluster or database is a critical row, never a hung command."""

from __future__ import annotations

import threading
import time
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
    results: dict[str, object] = {}
    took: dict[str, float] = {}
    done = {name: threading.Event() for name in measures}
    t0 = time.perf_counter()

    def run(name: str, fn: Measure) -> None:
        try:
            results[name] = fn()
        except BaseException as exc:  # noqa: BLE001 (shown as the type's reading)
            results[name] = exc
        finally:
            took[name] = (time.perf_counter() - t0) * 1000
            done[name].set()

    for name, fn in measures.items():
        if callable(fn):
            threading.Thread(target=run, args=(name, fn), name=f"resource-{name}", daemon=True).start()
    deadline = time.monotonic() + timeout_s
    types = []
    for name, fn in measures.items():
        warn, crit = limits[name]
        if not callable(fn):
            types.append(TypeReport(name, "not_configured", warn, crit, [Reading(name, "-", "not_configured",
                                                                                 detail=fn)]))
            continue
        if not done[name].wait(max(0.0, deadline - time.monotonic())):
            readings = [Reading(name, "-", "critical", detail=f"no answer within {timeout_s:g}s")]
            types.append(TypeReport(name, "critical", warn, crit, readings, round(timeout_s * 1000, 1)))
            continue
        got = results[name]
        if isinstance(got, ElfError):
            got = [Reading(name, "-", "critical", detail=got.message)]
        elif isinstance(got, BaseException):
            got = [Reading(name, "-", "critical", detail=f"{type(got).__name__}: {got}")]
        elif not got:
            got = [Reading(name, "-", "not_configured", detail="nothing of this kind in use here")]
        status = worst((r.status for r in got), default="unknown")
        types.append(TypeReport(name, status, warn, crit, got, round(took[name], 1)))
    return Snapshot(iso(now()), types)


def bad(snapshot: Snapshot) -> list[Reading]:
    return [r for t in snapshot.types for r in t.readings if r.status in BAD]
