"""Prices from litellm's shipped map (read as a file), exact nano-dollar arithmetic, overrides."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal

import pytest

from elfctl.adapters import price_files
from elfctl.domain import budget as bmod
from elfctl.domain import pricing
from elfctl.domain.pricing import Tokens, cost_nano, usd_to_nano
from elfctl.errors import InputError


@pytest.fixture(scope="module")
def book():
    return price_files.load()


def test_map_read_without_importing_litellm():
    code = ("import sys; from elfctl.adapters import price_files; b = price_files.load(); "
            "assert b.lookup('gpt-4o'); print('litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("model,tokens,expected", [
    # gpt-4o: 2.5e-6 in, 1.25e-6 cached, 1e-5 out (USD/token)
    ("gpt-4o", Tokens(prompt=1000, completion=200, cached=400), 600 * 2500 + 400 * 1250 + 200 * 10000),
    ("openai/gpt-4o-mini", Tokens(prompt=12, completion=7), 12 * 150 + 7 * 600),
    # claude-sonnet-4-5: 3e-6 in, 3e-7 cache read, 3.75e-6 cache write, 1.5e-5 out
    ("anthropic/claude-sonnet-4-5", Tokens(prompt=2000, completion=100, cached=1000, cache_write=500),
     500 * 3000 + 1000 * 300 + 500 * 3750 + 100 * 15000),
    # o1: reasoning tokens are part of completion and priced as output when no reasoning price is listed
    ("o1", Tokens(prompt=10, completion=500, reasoning=400), 10 * 15000 + 500 * 60000),
])
def test_exact_cost_for_real_models(book, model, tokens, expected):
    assert book.cost(model, tokens) == expected


def test_sub_nanodollar_prices_round_half_even_once_per_row():
    p = pricing.Price("m", input=Decimal("0.5"), output=Decimal("0.25"), cached=Decimal("0.5"),
                      cache_write=Decimal("0.5"), reasoning=Decimal("0.25"))
    assert cost_nano(p, Tokens(prompt=1)) == 0  # 0.5 -> 0 (even)
    assert cost_nano(p, Tokens(prompt=3)) == 2  # 1.5 -> 2 (even)
    assert cost_nano(p, Tokens(prompt=1, completion=2)) == 1  # summed first: 0.5 + 0.5 = 1, not 0 + 0
    assert usd_to_nano("0.0000000025") == 2 and usd_to_nano(0.1) == 100_000_000


def test_unknown_model_is_unpriced_not_zero(book):
    assert book.lookup("openai/no-such-model") is None
    assert book.cost("openai/no-such-model", Tokens(prompt=5)) is None


def test_overrides_add_models_and_change_the_version(tmp_path, book):
    f = tmp_path / "prices.yaml"
    f.write_text("house/llama:\n  input_cost_per_token: 1.0e-07\n  output_cost_per_token: 2.0e-07\n")
    b = price_files.load(f)
    assert b.cost("house/llama", Tokens(prompt=10, completion=10)) == 3000
    assert b.version != book.version and b.version.startswith(book.version + "+local:")
    f.write_text("house/llama:\n  input_cost_per_token: cheap\n")
    with pytest.raises(InputError, match="house/llama.input_cost_per_token"):
        price_files.load(f)


def test_budget_windows_in_a_time_zone():
    now = dt.datetime(2026, 1, 31, 23, 30, tzinfo=dt.UTC)
    assert bmod.window_start("day", now) == "2026-01-31"
    assert bmod.window_start("day", now, "Europe/Paris") == "2026-02-01"
    assert bmod.window_start("month", now, "Europe/Paris") == "2026-02-01"
    assert bmod.resets_at("day", now) == dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    assert bmod.resets_at("month", now, "Europe/Paris") == dt.datetime(2026, 2, 28, 23, tzinfo=dt.UTC)
    with pytest.raises(InputError):
        bmod.zone("Mars/Olympus")
