"""The five named retry policies, their overrides, and `@retry`.

    @retry(policy="standard")                # a named policy (elfctl.toml [retry.standard] may change it)
    @retry(policy="quick", attempts=5)       # per call: any field of RetryPolicy
    @retry(policy=RetryPolicy(name="mine", attempts=4, base_s=0.2, cap_s=2, max_time_s=10))

Each run gets an overall deadline: no attempt starts after it, and a wait that would leave no room
for one ends the run at once (the last error is raised). The waits are backoff's `expo` with full
jitter (`constant` for `quick`); a `Retry-After` the server sent (seconds or an HTTP date) replaces
the computed wait when it fits the deadline, and ends the run when it does not.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elfctl.resilience import classify
from elfctl.resilience import retrying as _retry


@dataclass(frozen=True)
class RetryPolicy:
    name: str
    attempts: int  # attempts in all, the first included
    base_s: float  # the first wait (every wait when fixed)
    cap_s: float  # the longest wait
    max_time_s: float  # the overall deadline of one run, attempts and waits included
    retry_on: str | Callable[[BaseException], bool] = "any"  # any | network | database, or a predicate
    fixed: bool = False  # constant waits of base_s (no jitter)

    def __post_init__(self):
        if self.attempts < 1:
            raise ValueError(f"retry policy {self.name}: attempts must be at least 1, got {self.attempts}")
        if self.max_time_s <= 0 or self.base_s < 0 or self.cap_s < self.base_s:
            raise ValueError(f"retry policy {self.name}: need max_time_s > 0 and 0 <= base_s <= cap_s")
        if isinstance(self.retry_on, str) and self.retry_on not in classify.RETRY_ON:
            raise ValueError(f"retry policy {self.name}: retry_on must be one of {', '.join(classify.RETRY_ON)} "
                             f"or a predicate, got {self.retry_on!r}")

    def replace(self, **changes: Any) -> RetryPolicy:
        return dataclasses.replace(self, **changes)

    def predicate(self) -> Callable[[BaseException], bool]:
        return classify.RETRY_ON[self.retry_on] if isinstance(self.retry_on, str) else self.retry_on

    def runner(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], Any] = time.sleep,
               asleep: Callable[[float], Any] | None = None) -> _retry.Policy:
        """The engine (retry.Policy) running this policy; `clock`/`sleep`/`asleep`: a fake clock."""
        return _retry.Policy(self.predicate(), classify.retry_after, self.max_time_s, self.attempts,
                             self.base_s, self.cap_s, fixed=self.fixed, clock=clock, sleep=sleep,
                             asleep=asleep, pass_deadline=False)


POLICIES: dict[str, RetryPolicy] = {
    "quick": RetryPolicy("quick", 3, 0.5, 0.5, 5.0, "any", fixed=True),
    "standard": RetryPolicy("standard", 5, 1.0, 30.0, 120.0, "any"),
    "aggressive": RetryPolicy("aggressive", 10, 0.5, 60.0, 300.0, "any"),
    "network": RetryPolicy("network", 5, 2.0, 30.0, 60.0, "network"),
    "database": RetryPolicy("database", 3, 0.5, 5.0, 30.0, "database"),
}
# elfctl.toml [retry.<name>] keys -> RetryPolicy fields (config.SCHEMA declares them)
CONFIG_FIELDS = {"attempts": "attempts", "base_s": "base_s", "cap_s": "cap_s", "max_time_s": "max_time_s"}

_lock = threading.Lock()
_configured: tuple[Any, dict[str, RetryPolicy]] | None = None  # (the Config read, its policies)


def configure(cfg: Any) -> dict[str, RetryPolicy]:
    """The policies with a project's `[retry.<name>]` overrides applied (`cfg`: an elfctl Config)."""
    global _configured
    with _lock:
        if _configured is not None and _configured[0] is cfg:
            return _configured[1]
        out = {}
        for name, base in POLICIES.items():
            changes = {f: cfg.get(f"retry.{name}.{key}") for key, f in CONFIG_FIELDS.items()
                       if cfg.source(f"retry.{name}.{key}") != "default"}
            out[name] = _checked(base, changes, f"[retry.{name}] in {cfg.file or 'elfctl.toml'}")
        _configured = (cfg, out)
        return out


def _checked(base: RetryPolicy, changes: dict, where: str) -> RetryPolicy:
    try:
        return base.replace(**changes)
    except ValueError as exc:
        from elfctl.errors import ConfigError

        raise ConfigError(f"{where}: {exc}", hint="keep 1 <= attempts, 0 <= base_s <= cap_s, max_time_s > 0") from None


def _current() -> dict[str, RetryPolicy]:
    from elfctl.resilience import runtime

    return configure(runtime.config())  # the process's config (runtime.reset() reads it again)


def named(policy: str | RetryPolicy, **overrides: Any) -> RetryPolicy:
    """A policy by name (with the project's overrides) or as given, then the per-call overrides."""
    if isinstance(policy, RetryPolicy):
        base = policy
    else:
        table = _current()
        if policy not in table:
            from elfctl.errors import InputError

            raise InputError(f"retry policy {policy!r} is not known",
                             hint=f"use one of {', '.join(POLICIES)} or pass a RetryPolicy")
        base = table[policy]
    return _checked(base, overrides, f"retry(policy={base.name!r})") if overrides else base


def retry(policy: str | RetryPolicy = "standard", *, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], Any] = time.sleep, asleep: Callable[[float], Any] | None = None,
          **overrides: Any) -> Callable[[Callable], Callable]:
    """Decorate a sync or async function with a retry policy. The policy (and the project's
    elfctl.toml) is resolved at the first call, so importing a decorated module reads no config."""

    def decorate(fn: Callable) -> Callable:
        import functools
        import inspect

        built: list[Any] = []

        def engine():
            if not built:
                built.append(named(policy, **overrides).runner(clock, sleep, asleep)(fn))
            return built[0]

        if inspect.iscoroutinefunction(fn):

            async def arun(*args: Any, **kwargs: Any) -> Any:
                return await engine()(*args, **kwargs)

            wrapper = functools.wraps(fn)(arun)
        else:

            def run(*args: Any, **kwargs: Any) -> Any:
                return engine()(*args, **kwargs)

            wrapper = functools.wraps(fn)(run)
        wrapper.retry_policy = lambda: named(policy, **overrides)
        return wrapper

    return decorate
