"""Team keys on both dialects: minted once, hashed at rest, listed without the key, revoked (one key,
or a team's retired revisions), expiry, and the Authenticator's answers; `elfctl gateway key ...`."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from elfctl.services.gateway import keys


@pytest.fixture
def store(gw_env):
    return gw_env[1]


def test_a_key_is_stored_only_as_its_hash(store):
    raw = keys.mint(store, "alpha", revision=3)
    assert raw.startswith("elf_") and keys.split(raw) == raw[4:12]
    dump = json.dumps(store.query("SELECT * FROM gateway_keys"))
    assert raw not in dump and raw[13:] not in dump  # neither the key nor its secret part
    [k] = keys.listing(store)
    assert (k.prefix, k.team, k.revision, k.revoked_at, k.last_used_at) == (raw[4:12], "alpha", 3, None, None)


def test_authenticator_answers_live_keys_only(store):
    auth = keys.Authenticator(store, ttl_s=0)
    raw = keys.mint(store, "alpha")
    assert auth.lookup(raw).team == "alpha"
    assert keys.listing(store)[0].last_used_at is not None
    for bad in (None, "", "elf_", raw[:-1], raw.upper(), raw + "0", "elf_zzzzzzzz_" + "0" * 48):
        assert auth.lookup(bad) is None
    # The right prefix with another secret: refused (the hash is compared, not the prefix).
    assert auth.lookup(raw[:13] + ("0" * 48 if raw[13:] != "0" * 48 else "1" * 48)) is None
    assert keys.revoke(store, raw[4:12]) is True and keys.revoke(store, raw[4:12]) is False
    assert auth.lookup(raw) is None


def test_cached_answers_last_ttl_then_follow_the_store(store):
    auth = keys.Authenticator(store, ttl_s=60)
    raw = keys.mint(store, "alpha")
    assert auth.lookup(raw) is not None and auth.cached(raw)
    keys.revoke(store, raw[4:12])
    assert auth.lookup(raw) is not None  # inside the ttl the cache answers
    auth.ttl_s = 0
    assert not auth.cached(raw) and auth.lookup(raw) is None


def test_expired_key_is_refused(store):
    auth = keys.Authenticator(store, ttl_s=0)
    past = keys.mint(store, "alpha", expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    future = keys.mint(store, "alpha", expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    assert auth.lookup(past) is None and auth.lookup(future) is not None


def test_revoke_team_revisions_keeps_the_serving_ones_and_operator_keys(store):
    r1, r2, r3 = (keys.mint(store, "alpha", revision=n) for n in (1, 2, 3))
    op = keys.mint(store, "alpha")
    other = keys.mint(store, "beta", revision=1)
    gone = keys.revoke_team_revisions(store, "alpha", keep={3})
    assert sorted(gone) == sorted([r1[4:12], r2[4:12]])
    live = {k.prefix for k in keys.listing(store) if k.revoked_at is None}
    assert live == {r3[4:12], op[4:12], other[4:12]}
    assert keys.revoke_team_revisions(store, "alpha", keep={3}) == []


def test_team_name_is_checked(store):
    from elfctl.errors import InputError

    with pytest.raises(InputError, match="DNS-1123"):
        keys.mint(store, "Bad_Team")
    assert keys.listing(store) == []


# --- the CLI ------------------------------------------------------------------------------------------


def test_key_commands(gw_env, elfctl):
    project, store = gw_env
    made = elfctl("--json", "gateway", "key", "create", "alpha", "--expires", "30d", cwd=project)
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    raw, prefix = created["key"], created["prefix"]
    assert keys.Authenticator(store).lookup(raw).team == "alpha" and created["expires_at"]
    listed = elfctl("--json", "gateway", "key", "list", cwd=project)
    assert listed.returncode == 0 and raw not in listed.stdout and raw[13:] not in listed.stdout
    assert [k["prefix"] for k in json.loads(listed.stdout)] == [prefix]
    human = elfctl("gateway", "key", "list", cwd=project)
    assert prefix in human.stdout and raw[13:] not in human.stdout
    done = elfctl("gateway", "key", "revoke", prefix, cwd=project)
    assert done.returncode == 0 and "revoked" in done.stdout
    again = elfctl("--json", "gateway", "key", "revoke", prefix, cwd=project)
    assert again.returncode == 1 and json.loads(again.stdout)["error"]["message"] == f"key {prefix}: already revoked"


@pytest.mark.parametrize("args, words", [
    (["create", "Bad_Team"], "not a DNS-1123 label"),
    (["create", "alpha", "--expires", "soon"], "--expires 'soon'"),
    (["create", "alpha", "--expires", "2001-01-01"], "has passed"),
    (["revoke", "xyz"], "PREFIX 'xyz'"),
])
def test_key_commands_refuse_bad_input(gw_env, elfctl, args, words):
    project, store = gw_env
    proc = elfctl("gateway", "key", *args, cwd=project)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert keys.listing(store) == []


def test_revoking_an_unknown_key_fails(gw_env, elfctl):
    project, _store = gw_env
    proc = elfctl("gateway", "key", "revoke", "0123abcd", cwd=project)
    assert proc.returncode == 1 and "no such key" in proc.stderr
