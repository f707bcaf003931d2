"""Output: one object per run that knows whether to print JSON or a human view.

stdout carries the result only (JSON with `--json`); progress, logs and errors for people go to
stderr. Everything printed passes through `scrub`, so a secret cannot leak through a renderer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from elfctl.errors import ElfError
from elfctl.redact import scrub

_PLAIN = frozenset({str, int, float, bool, type(None)})


def to_data(obj: Any) -> Any:
    """Typed result -> JSON-able data. `--json` is this serialisation, not a second code path."""
    if type(obj) in _PLAIN:  # most leaves: answered before the checks below (~1 ms per 1,000 values)
        return obj
    if hasattr(obj, "to_data"):
        return to_data(obj.to_data())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_data(v) for v in obj]
    if isinstance(obj, (dt.datetime, dt.date)):
        return obj.isoformat()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    decimal = sys.modules.get("decimal")  # a Decimal exists only once its module is imported (~1 ms)
    if decimal is not None and isinstance(obj, decimal.Decimal):
        return str(obj)
    return obj


def dumps(obj: Any) -> str:
    return scrub(json.dumps(to_data(obj), indent=2, ensure_ascii=False))


class Output:
    def __init__(self, json_mode: bool = False, debug: bool = False, quiet: bool = False):
        self.json = json_mode
        self.debug = debug
        self.quiet = quiet
        self._out = None
        self._err = None

    # rich is imported on first use: `--help` never pays for consoles it does not print with.
    @property
    def out(self):
        if self._out is None:
            from rich.console import Console

            self._out = Console(file=sys.stdout, highlight=False, soft_wrap=False)
        return self._out

    @property
    def err(self):
        if self._err is None:
            from rich.console import Console

            self._err = Console(file=sys.stderr, highlight=False, soft_wrap=True)
        return self._err

    def result(self, obj: Any, human: Callable[[Any], Any] | None = None) -> None:
        """Print a command's result: JSON on stdout with --json, else `human(obj)`'s renderable."""
        if self.json:
            sys.stdout.write(dumps(obj) + "\n")
            sys.stdout.flush()
            return
        renderable = human(obj) if human else dumps(obj)
        if renderable is None:
            return
        if isinstance(renderable, str):
            self.out.print(scrub(renderable), markup=False)
        else:
            self.out.print(renderable)

    def info(self, message: str) -> None:
        """Progress for people: stderr, never in JSON mode's stdout."""
        if not self.quiet:
            self.err.print(scrub(message), markup=False)

    def step(self, message: str):
        """A spinner on stderr for a long step (a plain line when stderr is not a terminal)."""
        from contextlib import nullcontext

        if self.quiet:
            return nullcontext()
        if not self.err.is_terminal:
            self.info(message)
            return nullcontext()
        return self.err.status(scrub(message))

    def watch(self, produce: Callable[[], Any], human: Callable[[Any], Any], interval_s: float) -> Any:
        """Refresh `human(produce())` in place until Ctrl-C (which ends cleanly). Without a terminal
        on stdout, or with --json, print one snapshot instead. Returns the last result."""
        import time

        result = produce()
        if self.json or not self.out.is_terminal:
            self.result(result, human)
            return result
        from rich.live import Live

        try:
            with Live(human(result), console=self.out, auto_refresh=False, transient=False) as live:
                while True:
                    time.sleep(interval_s)
                    result = produce()
                    live.update(human(result), refresh=True)
        except KeyboardInterrupt:
            pass
        return result

    def warn(self, message: str) -> None:
        self.err.print("warning: " + scrub(message), markup=False, style="yellow")

    def error(self, exc: ElfError, beside: Any = None) -> None:
        """The error as `error:`/`hint:` on stderr; with --json also `{"error": {...}}` on stdout,
        next to the fields of `beside` (the result a failed command still has) in one object."""
        if self.json:
            data = {k: (scrub(v) if isinstance(v, str) else v) for k, v in exc.to_dict().items()}
            fields = to_data(beside) if beside is not None else {}
            if not isinstance(fields, dict):
                fields = {"result": fields}
            sys.stdout.write(dumps({**fields, "error": data}) + "\n")
            sys.stdout.flush()
        # People always get the error on stderr, JSON or not: CI logs show why a step failed.
        self.err.print("error: " + scrub(exc.message), markup=False, style="red")
        if exc.hint:
            self.err.print("hint: " + scrub(exc.hint), markup=False)
