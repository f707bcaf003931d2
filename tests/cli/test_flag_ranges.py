"""Every numeric flag of every command has a range (cli/bounds.py), so a new flag cannot slip in
without one: nan, inf, negative or absurd values are refused with the flag, value and range."""

from __future__ import annotations

import importlib

from elfctl.cli.common import _build
from elfctl.cli.main import COMMANDS


def _options():
    def walk(cmd, path):
        if hasattr(cmd, "commands"):  # a group (Typer may bring its own copy of click)
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*path, name])
        for p in cmd.params:
            yield " ".join(path), p

    for name, (module, attr, _) in COMMANDS.items():
        yield from walk(_build(name, getattr(importlib.import_module(module), attr)), [name])


def test_every_numeric_flag_has_a_range():
    numeric = [(cmd, p) for cmd, p in _options() if type(p.type).__name__ in ("IntParamType", "FloatParamType")]
    assert len(numeric) >= 15
    unchecked = [f"{cmd} {p.opts[0]}" for cmd, p in numeric if p.callback is None]
    assert unchecked == []


def test_money_and_image_flags_are_checked():
    names = {"--max-usd", "--daily", "--monthly", "--image", "--tag"}
    found = {p.opts[0]: p for _, p in _options() if p.opts and p.opts[0] in names}
    assert set(found) == names and all(p.callback is not None for p in found.values())
