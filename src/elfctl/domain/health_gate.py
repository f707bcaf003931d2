"""The deploy health gate, Kubernetes-style: a replica is ready after `success_threshold` consecutive
passes and fails after `failure_threshold` consecutive failures. Answers in IETF health JSON count by
their status (`fail` fails, `warn` passes and is recorded). No I/O: the target feeds probe results in."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# The verification window after the switch when neither team.yaml (health.soak_s) nor the config
# (deploy.soak_s) says otherwise: long enough to see a version die in its first seconds of serving.
DEFAULT_WINDOW_S = 10.0

PASSING = {"pass", "ok", "up"}
WARNING = {"warn"}
FAILING = {"fail", "down", "error"}


def classify(status_code: int | None, body: bytes | str | None) -> tuple[str, str]:
    """One probe answer -> ("pass" | "warn" | "fail", reason). status_code None: no HTTP answer."""
    if status_code is None:
        return "fail", "no answer"
    if not 200 <= status_code < 300:
        return "fail", f"HTTP {status_code}"
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        doc = json.loads(text)
    except ValueError:
        return "pass", f"HTTP {status_code}"  # not health JSON: the status code decides
    status = str(doc.get("status", "pass")).lower() if isinstance(doc, dict) else "pass"
    if status in FAILING:
        return "fail", f"health JSON status '{status}'" + (
            f": {doc.get('output')}" if doc.get("output") else ""
        )
    if status in WARNING:
        return "warn", "health JSON status 'warn'" + (f": {doc.get('output')}" if doc.get("output") else "")
    return "pass", f"HTTP {status_code}, status '{status}'"


@dataclass
class ReplicaGate:
    success_threshold: int
    failure_threshold: int
    successes: int = 0
    failures: int = 0
    answered: bool = False  # a replica that never answered is still starting, not failing
    # After the switch: a replica that answered and now refuses connections has stopped serving
    # (its server died, the container may live on); waiting for more failures only loses requests.
    stop_on_refused: bool = False
    last: str = ""
    warnings: list[str] = field(default_factory=list)
    stopped: bool = False

    def record(self, outcome: str, reason: str, refused: bool = False) -> None:
        self.last = reason
        if refused and not self.answered:
            return  # still starting: the start timeout bounds this, not the failure threshold
        if refused and self.stop_on_refused:
            self.stopped = True
        self.answered = self.answered or not refused
        if outcome in ("pass", "warn"):
            self.successes += 1
            self.failures = 0
            if outcome == "warn" and reason not in self.warnings:
                self.warnings.append(reason)
        else:
            self.failures += 1
            self.successes = 0

    @property
    def ready(self) -> bool:
        return self.successes >= self.success_threshold

    @property
    def failed(self) -> bool:
        return self.stopped or self.failures >= self.failure_threshold

    def why_failed(self, path: str) -> str:
        if self.stopped:
            return f"stopped accepting connections on its port after answering ({self.last})"
        return f"{self.failure_threshold} consecutive failed health checks on {path} (last: {self.last})"
