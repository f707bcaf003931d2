"""Credential rules without I/O: the Secret type, names, durations, .env parsing, the audit chain."""

import datetime as dt
import json
import logging
import pickle

import pytest

from elfctl.domain import credentials as rules
from elfctl.domain.secret import Secret
from elfctl.errors import InputError
from elfctl.output import dumps
from elfctl.redact import RedactingFilter, scrub, secret


def test_secret_is_masked_everywhere_but_reveal():
    s = secret("sk-live-0123456789")
    old_style = "%s" % s  # noqa: UP031
    for shown in (str(s), repr(s), f"{s}", f"{s!r}", old_style, dumps({"k": s}), json.dumps(str(s))):
        assert "sk-live" not in shown and "****" in shown
    assert s.reveal() == "sk-live-0123456789"
    # Registered for redaction: a copied-out value is scrubbed from text and logs too.
    assert "sk-live" not in scrub("token=sk-live-0123456789")
    rec = logging.LogRecord("t", logging.INFO, "f", 1, "using %s", ("sk-live-0123456789",), None)
    RedactingFilter().filter(rec)
    assert "sk-live" not in rec.getMessage()
    with pytest.raises(TypeError):
        pickle.dumps(s)
    with pytest.raises(AttributeError):
        s._value = "x"
    assert s == Secret("sk-live-0123456789") and s != Secret("other-value")


def test_a_domain_secret_changes_no_process_state():
    """Building the value type registers nothing; `redact.secret` (the edge) does."""
    Secret("pure-domain-value-4821")
    assert scrub("x pure-domain-value-4821") == "x pure-domain-value-4821"
    secret("edge-built-value-4821")
    assert scrub("x edge-built-value-4821") == "x ****"


@pytest.mark.parametrize("bad", ["lower", "1ABC", "A-B", "A B", "", "X" * 129, "ÄBC", "A=B"])
def test_invalid_names_are_rejected(bad):
    with pytest.raises(InputError) as e:
        rules.check_name(bad)
    assert "UPPER_SNAKE_CASE" in e.value.hint


@pytest.mark.parametrize("good", ["A", "OPENAI_API_KEY", "_X1", "X" * 128])
def test_valid_names(good):
    assert rules.check_name(good) == good


def test_durations():
    assert rules.parse_duration("90d", "x") == dt.timedelta(days=90)
    assert rules.parse_duration("24h", "x") == dt.timedelta(hours=24)
    with pytest.raises(InputError):
        rules.parse_duration("soon", "--expires")


def test_dotenv_parses_the_usual_forms():
    text = (
        "# comment\n\nexport A=1\nB = two # trailing comment\nC='lit # not comment'\n"
        'D="line\\nnext \\"q\\""\nE=\n'
    )
    assert rules.parse_dotenv(text, ".env") == [
        ("A", "1"),
        ("B", "two"),
        ("C", "lit # not comment"),
        ("D", 'line\nnext "q"'),
        ("E", ""),
    ]


@pytest.mark.parametrize(
    "line, why",
    [
        ("sk-secret-value-no-equals", "no '='"),
        ("bad-name=sk-secret-value", "not a valid credential name"),
        ('A="sk-secret-value', "no closing"),
        ("A='sk-secret-value' junk", "after the closing quote"),
    ],
)
def test_bad_dotenv_lines_name_the_line_but_never_echo_it(line, why):
    with pytest.raises(InputError) as e:
        rules.parse_dotenv(f"OK=1\n# c\n{line}\n", "prod.env")
    assert e.value.message.startswith("prod.env:3: ") and why in e.value.message
    assert "sk-secret-value" not in e.value.message + (e.value.hint or "")


def test_expiry_findings():
    at = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    rows = [
        {
            "name": "OLD",
            "scope": "",
            "created_at": "2026-01-01T00:00:00+00:00",
            "rotated_at": None,
            "expires_at": "2026-05-01T00:00:00+00:00",
        },
        {
            "name": "SOON",
            "scope": "t",
            "created_at": "2026-05-30T00:00:00+00:00",
            "rotated_at": None,
            "expires_at": "2026-06-05T00:00:00+00:00",
        },
        {
            "name": "AGED",
            "scope": "",
            "created_at": "2026-01-01T00:00:00+00:00",
            "rotated_at": None,
            "expires_at": None,
        },
        {
            "name": "FINE",
            "scope": "",
            "created_at": "2026-05-30T00:00:00+00:00",
            "rotated_at": None,
            "expires_at": None,
        },
    ]
    found = {f.name: f for f in rules.expiry_findings(rows, at, dt.timedelta(days=90), dt.timedelta(days=7))}
    assert found["OLD"].status == "fail" and found["OLD"].reason == "expired"
    assert found["OLD"].since == "2026-05-01T00:00:00+00:00"
    assert found["SOON"].status == "warn"
    assert found["AGED"].status == "fail" and found["AGED"].reason == "past max age"
    assert "FINE" not in found


def _chain(key, n):
    rows, prev = [], rules.GENESIS
    for i in range(1, n + 1):
        e = {
            "seq": i,
            "ts": f"t{i}",
            "os_user": "u",
            "host": "h",
            "command": "c",
            "action": "read",
            "name": f"N{i}",
            "scope": "",
            "version": 1,
            "result": "ok",
        }
        e["mac"], e["prev_mac"] = rules.entry_mac(key, prev, e), prev
        prev = e["mac"]
        rows.append(e)
    head = {"count": n, "last_mac": prev, "mac": rules.head_mac(key, n, prev)}
    return rows, head


def test_chain_verifies_and_names_each_kind_of_tampering():
    key = b"k" * 32
    rows, head = _chain(key, 6)
    assert rules.verify_chain(key, rows, head).ok

    edited = [dict(r) for r in rows]
    edited[2]["action"] = "set"
    [p] = rules.verify_chain(key, edited, head).problems
    assert (p.seq, p.kind) == (3, "edited")

    removed = [r for r in rows if r["seq"] != 4]
    [p] = rules.verify_chain(key, removed, head).problems
    assert p.kind == "removed" and "between 3 and 5" in p.detail

    swapped = [dict(r) for r in rows]
    swapped[1], swapped[2] = {**rows[2], "seq": 2}, {**rows[1], "seq": 3}
    kinds = {p.kind for p in rules.verify_chain(key, swapped, head).problems}
    assert kinds == {"reordered"}

    truncated = rows[:-2]
    [p] = rules.verify_chain(key, truncated, head).problems
    assert p.kind == "removed" and "newest" in p.detail

    assert not rules.verify_chain(b"x" * 32, rows, head).ok  # another key: nothing verifies
