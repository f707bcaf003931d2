"""The credential audit trail: append an HMAC-chained entry inside the caller's transaction, list
entries, verify the chain. The HMAC key comes from the master key of the backend recorded in the
head row, so it is the same for every process and survives a passphrase change (rekey)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from elfctl.domain import clock
from elfctl.domain import credentials as rules
from elfctl.ports import Tx
from elfctl.redact import scrub

# The entry `creds rekey --new` writes when the key of the trail was lost with the credential file:
# entries from it on are MAC'd with the new file's key.
NEW_KEY = "new_audit_key"


def audit_key(master: bytes) -> bytes:
    return hmac.new(master, b"elfctl credential audit v1", hashlib.sha256).digest()


@dataclass
class Actor:
    os_user: str
    host: str
    command: str


def head(tx: Tx) -> dict | None:
    rows = tx.query("SELECT key_backend, count, last_mac, mac FROM credential_audit_head WHERE id = 1")
    return rows[0] if rows else None


def append(tx: Tx, key: bytes, key_backend: str, actor: Actor, entries: list[dict]) -> None:
    """Append entries (action, name, scope, version, result) to the chain, then move the head."""
    h = head(tx)
    prev = h["last_mac"] if h else rules.GENESIS
    count = int(h["count"]) if h else 0
    ts = rules.iso(clock.now())
    for e in entries:
        row = {
            "ts": ts,
            "os_user": actor.os_user,
            "host": actor.host,
            "command": scrub(actor.command)[:200],
            "action": e["action"],
            "name": e.get("name"),
            "scope": e.get("scope") or "",
            "version": e.get("version"),
            "result": scrub(e.get("result", "ok")),
        }
        mac = rules.entry_mac(key, prev, row)
        tx.execute(
            "INSERT INTO credential_audit (ts, os_user, host, command, action, name, scope, version, "
            "result, mac, prev_mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*(row[f] for f in rules.AUDIT_FIELDS), mac, prev),
        )
        prev, count = mac, count + 1
    hm = rules.head_mac(key, count, prev)
    if h is None:
        tx.execute(
            "INSERT INTO credential_audit_head (id, key_backend, count, last_mac, mac) "
            "VALUES (1, ?, ?, ?, ?)",
            (key_backend, count, prev, hm),
        )
    else:
        tx.execute(
            "UPDATE credential_audit_head SET count = ?, last_mac = ?, mac = ? WHERE id = 1",
            (count, prev, hm),
        )


def entries(tx: Tx, scope: str | None = None, since: dt.datetime | None = None) -> list[dict]:
    sql = (
        "SELECT seq, ts, os_user, host, command, action, name, scope, version, result "
        "FROM credential_audit WHERE 1 = 1"
    )
    params: list = []
    if scope is not None:
        sql += " AND scope = ?"
        params.append(scope)
    if since is not None:
        sql += " AND ts >= ?"
        params.append(rules.iso(since))
    return tx.query(sql + " ORDER BY seq", params)


def verify(tx: Tx, key: bytes) -> rules.VerifyResult:
    rows = tx.query(
        "SELECT seq, ts, os_user, host, command, action, name, scope, version, result, mac, "
        "prev_mac FROM credential_audit ORDER BY seq"
    )
    return rules.verify_chain(key, rows, head(tx), new_key=NEW_KEY)


# --- use cases over a Vault (services.credentials.Vault) ----------------------------------------


def audit_entries(vault, team: str | None = None, since: str | None = None) -> list[dict]:
    vault.require_schema()
    scope = rules.check_team(team) if team is not None else None
    return entries(vault.store, scope, rules.parse_since(since) if since else None)


def audit_verify(vault) -> rules.VerifyResult:
    with vault.locked() as tx:
        h = head(tx)
        name = h["key_backend"] if h else vault.default_backend()
        return verify(tx, audit_key(vault.backend(name).master_key()))
