"""One error hierarchy for every user-visible failure.

Each class carries its exit code and a stable machine code, so the CLI shows every error the same
way (`error:` / `hint:` for people, `{"error": {...}}` with `--json`). Adapters translate SDK
exceptions into these at the border; services never see an SDK type.
"""

from __future__ import annotations


class ElfError(Exception):
    """Base: the operation failed (exit 1)."""

    exit_code = 1
    code = "failed"

    def __init__(self, message: str, hint: str | None = None, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code:
            self.code = code

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class OperationFailed(ElfError):
    """The operation ran and did not succeed: deploy rolled back, health failing, budget blocked."""

    exit_code = 1
    code = "failed"


class InputError(ElfError):
    """Bad input or usage: bad flag, bad team spec, bad config, missing config (exit 2)."""

    exit_code = 2
    code = "invalid_input"


class ConfigError(InputError):
    code = "invalid_config"


class Unreachable(ElfError):
    """An outside system cannot be reached: Docker, registry, cluster, database (exit 3)."""

    exit_code = 3
    code = "unreachable"


class MigrationError(OperationFailed):
    code = "migration_failed"


class LockTimeout(OperationFailed):
    code = "lock_timeout"


class LeaseLost(OperationFailed):
    """A deploy's lease was taken over or could not be renewed within its ttl: it stops before the switch."""

    code = "lease_lost"
