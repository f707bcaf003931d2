"""What a deploy target reports after one rollout: the one shape both targets return
(it satisfies ports.Rollout; the other fields are what a target has to add)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RolloutReport:
    ok: bool  # True: the new version serves
    reason: str
    logs: str = ""  # the new version's last log lines when it failed
    warnings: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)  # old replicas stopped after the switch (Docker)
    leftovers: list[str] = field(default_factory=list)  # not serving when it started: retired too
    changed: bool = True  # False: the image already served and nothing was applied (Kubernetes)
