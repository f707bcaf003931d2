"""Reading the command line before (and beside) Typer: imports nothing, so both the entry point
and the error boundary can use it without importing each other."""

from __future__ import annotations


def own_args(args: list[str]) -> list[str]:
    """The arguments elfctl reads itself: those after `--` belong to the command `creds run` runs."""
    return args[: args.index("--")] if "--" in args else args
