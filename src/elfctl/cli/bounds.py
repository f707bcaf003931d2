"""Checks of flag values, given to options as `callback=`: one validator per kind of value, so
every refusal names the flag, the value and what is allowed (a usage error, exit 2)."""

from __future__ import annotations

import math
from typing import Any

import typer


def shown(x: float) -> str:
    """2147483647 as 2,147,483,647, 0.1 as 0.1: a range a person can read."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def bounded(lo: float, hi: float):
    """A number from lo to hi inclusive; nan and inf refused."""

    def check(param: typer.CallbackParam, value: Any):
        if value is None:
            return value
        if not (math.isfinite(value) and lo <= value <= hi):
            raise typer.BadParameter(f"{value!r} is not a number from {shown(lo)} to {shown(hi)}", param=param)
        return value

    return check


def usd(lo: float = 0, hi: float = 1e9):
    """An amount in USD, kept as the text given (money is parsed exactly by the service)."""

    def check(param: typer.CallbackParam, value: str | None):
        if value is None:
            return value
        from decimal import Decimal, InvalidOperation

        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or not lo <= amount <= hi:
            raise typer.BadParameter(f"{value!r} is not an amount in USD from {shown(lo)} to {shown(hi)}", param=param)
        return value

    return check


def _via(checker, value, param):
    from elfctl.errors import InputError

    flag = param.opts[0]
    try:
        return checker(value, flag)
    except InputError as exc:  # click prefixes the flag itself
        raise typer.BadParameter(f"{exc.message.removeprefix(flag + ': ')} ({exc.hint})", param=param) from None


def image_ref(param: typer.CallbackParam, value: str | None):
    """A Docker image reference (domain.image_ref)."""
    from elfctl.domain.image_ref import check_image_ref

    return value if value is None else _via(check_image_ref, value, param)


def image_tag(param: typer.CallbackParam, value: str | None):
    from elfctl.domain.image_ref import check_tag

    return value if value is None else _via(check_tag, value, param)
