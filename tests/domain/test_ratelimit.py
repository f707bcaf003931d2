"""A provider's x-ratelimit-* headers read into a Limit: OpenAI's duration format, junk ignored, the
fuller window counted, a window past its reset moment counted as refilled."""

from __future__ import annotations

import datetime as dt

import pytest

from elfctl.domain.ratelimit import duration_s, parse

AT = dt.datetime(2026, 11, 27, 21, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("text, seconds", [
    ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("1s", 1.0), ("7.66s", 7.66), ("60", 60.0),
    ("0", 0.0), ("", None), (None, None), ("soon", None), ("-5", None), ("1e999", None),
    ("9" * 40 + "h", None), ("nan", None), ("5x", None), ("1s2", None),
    ("Fri, 27 Nov 2026 21:00:00 GMT", None),
])
def test_durations(text, seconds):
    assert duration_s(text) == seconds


def test_the_fuller_window_counts_until_its_reset():
    lim = parse("openai", "gpt-4o", {
        "x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "60",
        "x-ratelimit-limit-tokens": "10000", "x-ratelimit-remaining-tokens": "300",
        "x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "30s"}, AT)
    assert lim.used_percent(AT) == 97.0  # tokens: 9,700 of 10,000 used
    assert lim.used_percent(AT + dt.timedelta(seconds=10)) == 97.0
    assert lim.used_percent(AT + dt.timedelta(seconds=31)) == 0.0  # both windows refilled
    assert lim.describe(AT) == "60 of 100 requests, 300 of 10,000 tokens left (requests reset in 1s; tokens reset in 30s)"


@pytest.mark.parametrize("headers", [
    {},
    {"x-ratelimit-limit-requests": "100"},  # a limit with nothing said about what is left
    {"x-ratelimit-remaining-requests": "lots"},
    {"x-ratelimit-remaining-requests": "-3"},
    {"x-ratelimit-remaining-requests": "1e999"},
    {"x-ratelimit-remaining-requests": "nan"},
])
def test_nothing_usable_is_no_limit(headers):
    assert parse("openai", "gpt-4o", headers, AT) is None


def test_hostile_values_are_dropped_one_by_one():
    lim = parse("openai", "gpt-4o", {"x-ratelimit-remaining-requests": "5", "x-ratelimit-limit-requests": "1e999x",
                                     "x-ratelimit-reset-requests": "tomorrow"}, AT)
    assert (lim.remaining_requests, lim.limit_requests, lim.reset_requests_at) == (5, None, None)
    assert lim.used_percent(AT) is None  # no limit stated: no share of it
    assert lim.describe(AT) == "5 requests left"


def test_a_limit_with_no_reset_moment_goes_stale():
    lim = parse("openai", "gpt-4o", {"x-ratelimit-remaining-requests": "1", "x-ratelimit-limit-requests": "100"}, AT)
    assert lim.used_percent(AT + dt.timedelta(seconds=119)) == 99.0
    assert lim.used_percent(AT + dt.timedelta(seconds=121)) is None  # unknown, not critical forever
