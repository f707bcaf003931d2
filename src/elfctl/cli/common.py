"""What every command shares: the --json option, the App from the context, the error boundary."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

from elfctl.errors import ElfError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


def get_app(ctx: typer.Context, json_mode: bool = False):
    """The run's App (built by the root callback); a command's own --json switches it on."""
    root = ctx.find_root()
    app = root.obj
    if app is None:  # a group invoked on its own (tests): build a default App
        from elfctl.app import App
        from elfctl.output import Output

        app = root.obj = App(Output())
        root.call_on_close(app.close)
    if json_mode:
        app.output.json = True
    return app


class ElfGroup(TyperGroup):
    """Root group: turns every ElfError into `error:`/`hint:` (or JSON) and its exit code, and
    any other exception into a one-line internal error, unless --debug asks for the traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ElfError as exc:
            _output(ctx).error(exc)
            if _debug(ctx):
                raise
            raise typer.Exit(exc.exit_code) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if _debug(ctx) or _is_click_exception(exc):
                raise
            from elfctl.errors import OperationFailed
            from elfctl.redact import scrub

            err = OperationFailed(
                f"internal error: {type(exc).__name__}: {scrub(str(exc))}",
                hint="run again with --debug for the traceback, and report it",
                code="internal",
            )
            _output(ctx).error(err)
            raise typer.Exit(1) from None


def _is_click_exception(exc: Exception) -> bool:
    from typer import _click  # noqa: F401  (typer vendors click)

    return type(exc).__module__.startswith(("click", "typer._click"))


def _output(ctx):
    app = ctx.find_root().obj
    if app is not None:
        return app.output
    from elfctl.output import Output

    return Output(json_mode="--json" in sys.argv)


def _debug(ctx) -> bool:
    app = ctx.find_root().obj
    return bool(app and app.output.debug)
