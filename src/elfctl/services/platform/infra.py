"""`infra up` as a list of idempotent steps: each reports whether it changed anything."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from elfctl.domain.health import HealthReport
from elfctl.errors import ElfError, InputError


@dataclass
class Step:
    name: str
    plan: str  # what it would do, for --dry-run
    run: Callable[[], tuple[bool, str]]  # -> (changed, details)


@dataclass
class StepResult:
    name: str
    outcome: str  # changed | unchanged | skipped | planned
    details: str = ""


@dataclass
class UpResult:
    dry_run: bool
    steps: list[StepResult] = field(default_factory=list)
    health: HealthReport | None = None

    @property
    def changed(self) -> bool:
        return any(s.outcome == "changed" for s in self.steps)

    @property
    def exit_code(self) -> int:
        return self.health.exit_code() if self.health else 0

    def to_data(self) -> dict:
        return {"dry_run": self.dry_run, "changed": self.changed, "steps": self.steps,
                "health": self.health}


def select(steps: list[Step], only: list[str], skip: list[str]) -> set[str]:
    names = [s.name for s in steps]
    for flag, given in (("--only", only), ("--skip", skip)):
        for name in given:
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                raise InputError(f"{flag} {name}: no such step",
                                 hint=(f"did you mean '{close[0]}'? " if close else "") + f"steps: {', '.join(names)}")
    return {n for n in names if (not only or n in only) and n not in skip}


def run_steps(steps: list[Step], dry_run: bool, only: list[str], skip: list[str],
              progress: Callable[[str], None]) -> list[StepResult]:
    chosen = select(steps, only, skip)
    results = []
    for step in steps:
        if step.name not in chosen:
            results.append(StepResult(step.name, "skipped"))
            continue
        if dry_run:
            results.append(StepResult(step.name, "planned", step.plan))
            continue
        progress(f"{step.name}: {step.plan}")
        try:
            changed, details = step.run()
        except ElfError as exc:
            exc.message = f"infra up, step '{step.name}': {exc.message}"
            raise
        results.append(StepResult(step.name, "changed" if changed else "unchanged", details))
    return results
