"""One error hierarchy for every user-visible failure.

Each class carries its exit code and a stable machine code, so the CLI shows every error the same
way (`error:` / `hint:` for people, `{"error": {...}}` with `--json`). Adapters translate SDK
exceptions into these at the border; services never see an SDK type.

`ErrorCode` is the closed set of codes the program emits: a class or a `code=` outside it fails at
once (and tests/cli/test_error_codes.py scans the source for literals outside it), so scripts can
rely on the list below.
"""

from __future__ import annotations

from typing import Literal, get_args

ErrorCode = Literal[
    # generic kinds
    "failed",  # the operation ran and did not succeed
    "internal",  # a bug: an exception nothing translated
    "usage",  # a bad flag or argument (click's usage errors)
    "aborted",  # the user answered no to a confirmation
    "invalid_input",
    "invalid_config",
    "unreachable",  # an outside system does not answer
    "timeout",  # it answered, but the operation ran out of time
    "conflict",  # a concurrent change won; retrying may succeed
    # the store
    "store_not_migrated",
    "store_damaged",
    "store_locked",
    "store_full",
    "migration_failed",
    "checksum_drift",
    "missing_migration",
    "lock_timeout",
    "lease_lost",  # a deploy lost its lease: stopped before the switch
    # credentials
    "not_found",
    "no_previous",
    "value_missing",
    "wrong_passphrase",
    "newer_format",
    "corrupt_credentials",
    "credentials_missing",  # the store lists credentials in a backend that is gone
    # build, deploy, cluster
    "build_failed",
    "forbidden",
    "unauthorized",
    "invalid_manifest",
    # LLM calls and budgets
    "llm_failed",
    "budget_exceeded",
    "circuit_open",
    # the LLM gateway's HTTP answers (OpenAI's `error.code`; a provider's own 400 keeps its code)
    "invalid_api_key",
    "invalid_json",
    "invalid_type",
    "invalid_value",
    "missing_required_parameter",
    "unknown_parameter",
    "unsupported_value",
    "model_not_allowed",
    "model_not_found",
    "unknown_url",
    "method_not_allowed",
    "request_too_large",
    "request_timeout",
    "client_disconnected",
    "team_config",
    "rate_limited",
    "provider_bad_request",
    "provider_error",
    "provider_timeout",
]
CODES: frozenset[str] = frozenset(get_args(ErrorCode))


def _check(code: str) -> str:
    if code not in CODES:
        raise ValueError(f"error code {code!r} is not declared in elfctl.errors.ErrorCode")
    return code


class ElfError(Exception):
    """Base: the operation failed (exit 1)."""

    exit_code = 1
    code: ErrorCode = "failed"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _check(cls.code)

    def __init__(self, message: str, hint: str | None = None, *, code: ErrorCode | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code:
            self.code = _check(code)

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


class Timeout(OperationFailed):
    """The system answered but the operation ran past its limit (a statement timeout)."""

    code = "timeout"


class Conflict(OperationFailed):
    """A concurrent change won (a deadlock or serialization failure): running again may succeed."""

    code = "conflict"


class MigrationError(OperationFailed):
    code = "migration_failed"


class LockTimeout(OperationFailed):
    code = "lock_timeout"


class StoreNotMigrated(OperationFailed):
    """A table or column the code needs is missing: the schema is behind the code."""

    code = "store_not_migrated"


class StoreDamaged(OperationFailed):
    """The store's file is not a readable database (truncated, overwritten, bit rot)."""

    code = "store_damaged"


class StoreLocked(OperationFailed):
    """Another process held the store's write lock for longer than the busy timeout."""

    code = "store_locked"


class StoreFull(OperationFailed):
    """The database server is out of a resource: disk, memory or connections."""

    code = "store_full"


class LeaseLost(OperationFailed):
    """A deploy's lease was taken over or could not be renewed within its ttl: it stops before the switch."""

    code = "lease_lost"
