"""What every command shares: the --json option, the App from the context, the error boundary."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from elfctl.errors import ElfError

# Help and usage errors in plain text: rich's help renderer imports markdown-it and friends, which
# took 100 of the 165 ms of `elfctl --help`. Results, tables and dashboards still use rich.
HELP_MARKUP = None

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


def finish(app, result, human=None, failure: ElfError | None = None) -> None:
    """Show a command's result. A command that failed (`failure`) still shows what it has: with
    --json the result's fields and `error` in one object on stdout, for people the result and then
    `error:`/`hint:` on stderr; it then exits with the failure's exit code."""
    if failure is None:
        app.output.result(result, human)
        return
    if not app.output.json:
        app.output.result(result, human)
    app.output.error(failure, beside=result)
    raise typer.Exit(failure.exit_code)


class ElfGroup(TyperGroup):
    """Root group: turns every ElfError into `error:`/`hint:` (or JSON) and its exit code, and
    any other exception into a one-line internal error, unless --debug asks for the traceback.

    Its subcommands are `lazy`: {name: (module, attribute, one-line help)}. Only the one that runs is
    imported and built; `--help` lists them all from their one-line help, importing none."""

    lazy: dict[str, tuple[str, str, str]] = {}
    _listing = False

    def list_commands(self, ctx) -> list[str]:
        return [*self.lazy, *(n for n in super().list_commands(ctx) if n not in self.lazy)]

    def get_command(self, ctx, cmd_name: str):
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None or cmd_name not in self.lazy:
            return cmd
        module, attr, short_help = self.lazy[cmd_name]
        if self._listing:
            return TyperCommand(name=cmd_name, short_help=short_help)
        cmd = self.commands[cmd_name] = _build(cmd_name, getattr(importlib.import_module(module), attr))
        return cmd

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except Exception as exc:
            if _is_click_exception(exc):
                _usage_error_as_json(exc)
            raise

    def format_help(self, ctx, formatter):
        self._listing = True
        try:
            return super().format_help(ctx, formatter)
        finally:
            self._listing = False

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
        except BrokenPipeError:  # the reader went away (`elfctl ... | head`): stop quietly, as cat does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None
        except Exception as exc:
            if _is_click_exception(exc):
                _usage_error_as_json(exc)
                raise
            if _debug(ctx):
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


def _build(name: str, obj):
    """The click command for a Typer group or a command function, as `add_typer`/`command` on the
    root would build it (under a parent without completion options, which the root does not offer)."""
    parent = typer.Typer(add_completion=False, rich_markup_mode=HELP_MARKUP)
    parent.callback()(lambda: None)  # a group even with one command, so the command sits under it
    if isinstance(obj, typer.Typer):
        parent.add_typer(obj, name=name)
    else:
        parent.command(name)(obj)
    return typer.main.get_command(parent).commands[name]


def _usage_error_as_json(exc) -> None:
    """Under --json, a usage error is the same {"error": ...} object on stdout as every other error
    (exit 2), so a pipeline parsing the output gets JSON whatever went wrong. Otherwise: returns."""
    from elfctl.cli.args import own_args

    if "--json" not in own_args(sys.argv[1:]) or not hasattr(exc, "format_message") or type(exc).__name__ == "NoArgsIsHelpError":
        return
    from elfctl.errors import InputError
    from elfctl.output import Output

    where = exc.ctx.command_path if getattr(exc, "ctx", None) else "elfctl"
    Output(json_mode=True).error(InputError(exc.format_message(), hint=f"see `{where} --help`", code="usage"))
    raise typer.Exit(getattr(exc, "exit_code", 2))


def _is_click_exception(exc: Exception) -> bool:
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
