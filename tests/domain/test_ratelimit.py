"""A provider's x-ratelimit-* headers read into a Limit: OpenAI's duration format and resets given as
dates (HTTP-date, RFC 3339, epoch seconds), junk ignored, the
fuller window counted, a window past its reset moment counted as refilled."""

from __future__ import annotations

import datetime as dt

import pytest

from elfctl.domain.ratelimit import duration_s, parse, reset_at

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


@pytest.mark.parametrize("text, moment", [
    ("6m0s", AT + dt.timedelta(minutes=6)),
    ("1.5s", AT + dt.timedelta(seconds=1.5)),
    ("30", AT + dt.timedelta(seconds=30)),
    ("Fri, 27 Nov 2026 21:00:20 GMT", AT + dt.timedelta(seconds=20)),  # HTTP-date
    ("2026-11-27T21:01:00Z", AT + dt.timedelta(minutes=1)),  # RFC 3339, UTC
    ("2026-11-27T22:01:00+01:00", AT + dt.timedelta(minutes=1)),  # RFC 3339, an offset
    ("2026-11-27T21:00:05.250Z", AT + dt.timedelta(seconds=5.25)),
    (str(int(AT.timestamp()) + 45), AT + dt.timedelta(seconds=45)),  # Unix epoch seconds
    ("Fri, 27 Nov 2026 20:59:00 GMT", AT - dt.timedelta(minutes=1)),  # already past: refilled
    ("2026-11-27T21:01:00", None),  # no time zone: which moment is unknown
    ("Fri, 32 Nov 2026 21:00:20 GMT", None), ("2026-13-01T00:00:00Z", None), ("Mon, 1 Jan 10000 00:00:00 GMT", None),
    ("99999999999999999999", None), ("-1e12", None), ("inf", None), ("nan", None), ("x" * 10_000, None),
    ("tomorrow", None), ("", None), (None, None),
])
def test_reset_moments_from_durations_and_dates(text, moment):
    assert reset_at(text, AT) == moment


def test_a_date_reset_counts_until_it_passes():
    lim = parse("openai", "gpt-4o", {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "0",
                                     "x-ratelimit-reset-requests": "Fri, 27 Nov 2026 21:00:30 GMT"}, AT)
    assert lim.used_percent(AT + dt.timedelta(seconds=29)) == 100.0  # exhausted until the stated moment
    assert lim.used_percent(AT + dt.timedelta(seconds=31)) == 0.0
    assert lim.describe(AT) == "0 of 100 requests left (requests reset in 30s)"
