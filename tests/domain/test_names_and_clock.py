"""The one DNS-1123 check every command uses for team names, and the store's one time format."""

from __future__ import annotations

import datetime as dt

import pytest

from elfctl.domain.clock import iso
from elfctl.domain.names import check_team_name, is_dns_label
from elfctl.errors import InputError

LONGEST = "a" * 63


@pytest.mark.parametrize("name", ["a", "mkt", "support-bot", "a1-b2", LONGEST])
def test_labels_that_name_a_team(name):
    assert is_dns_label(name) and check_team_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "Bad_Name", "-mkt", "mkt-", "m.kt", "mkt/x", LONGEST + "a", None, 7])
def test_anything_else_is_one_clear_error(name):
    assert not is_dns_label(name)
    with pytest.raises(InputError) as err:
        check_team_name(name)
    assert err.value.exit_code == 2
    assert err.value.message == f"team name {name!r} is not a DNS-1123 label"
    assert "max 63" in err.value.hint


@pytest.mark.parametrize("cmd", [("logs",), ("team", "validate"), ("cost", "budget", "show")])
def test_commands_refuse_a_name_over_63_characters(project, cli, cmd):
    """Every command checks names the same way: 64 characters is refused up front (exit 2), before
    any file or store is read."""
    res = cli(*cmd, LONGEST + "a")
    assert res.exit_code == 2, res.stderr
    assert "is not a DNS-1123 label" in res.stderr and "max 63" in res.stderr


def test_store_time_is_utc_milliseconds_sortable_as_text():
    t = dt.datetime(2026, 3, 1, 1, 2, 3, 456789, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert iso(t) == "2026-02-28T23:02:03.456+00:00"
    assert iso(t, "seconds") == "2026-02-28T23:02:03+00:00"
    later = t + dt.timedelta(milliseconds=1)
    assert iso(t) < iso(later)
